#include "common/cli.hpp"

#include "em/io/image.hpp"

#include "em/core/log.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace em::cli {
namespace {
CommonOptions g_common;

// Edit distance (insertions, deletions, substitutions) between two option names.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// For each "--name" (or "--name=value") in argv that the app does not know: "; did you mean --nearest?" with the
// nearest long option, when it is close (dashes for underscores, a typo or two); "" when there is none.
std::string suggestions(CLI::App& app, int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> found;  // (unknown, nearest known)
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) continue;
    const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (app.get_option_no_throw("--" + name) != nullptr) continue;
    std::string wanted = name;
    std::replace(wanted.begin(), wanted.end(), '-', '_');
    std::string best;
    size_t best_distance = std::max<size_t>(2, wanted.size() / 4) + 1;
    for (const CLI::Option* option : app.get_options()) {
      for (const std::string& known : option->get_lnames()) {
        const size_t d = edit_distance(wanted, known);
        if (d < best_distance) best_distance = d, best = known;
      }
    }
    if (!best.empty()) found.emplace_back(name, best);
  }
  if (found.empty()) return "";
  if (found.size() == 1) return fmt::format("; did you mean --{}?", found[0].second);
  std::string out = "; did you mean ";
  for (size_t i = 0; i < found.size(); ++i)
    out += fmt::format("{}--{} (for --{})", i ? ", " : "", found[i].second, found[i].first);
  return out + "?";
}

bool is_boolean_word(std::string word) {
  for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return word == "true" || word == "false" || word == "yes" || word == "no" || word == "1" || word == "0";
}

// argv without the program name, in CLI11's reversed order, with "--flag false" joined into "--flag=false" for the
// options that take no value or an optional one: platforms pass booleans as separate strings, and a bare flag
// takes a following word only when it is a boolean (so `em-predict --bf16 a.png` still predicts a.png).
std::vector<std::string> parse_order(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args;
  bool options_ended = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    options_ended = options_ended || arg == "--";
    const bool long_option = arg.size() > 2 && arg.compare(0, 2, "--") == 0 && arg.find('=') == std::string::npos;
    if (!options_ended && long_option && i + 1 < argc && is_boolean_word(argv[i + 1])) {
      const CLI::Option* option = app.get_option_no_throw(arg);
      if (option != nullptr && option->get_expected_min() == 0) {
        args.push_back(arg + "=" + argv[++i]);
        continue;
      }
    }
    args.push_back(arg);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

std::string footer(const ToolInfo& info) {
  std::string text = "\nUsage:\n  " + info.usage + "\n";
  if (!info.example.empty()) text += "\nExample:\n  " + info.example + "\n";
  text += "\nExit codes: 0 success, 1 data or runtime error, 2 usage error, 130 interrupted.\n";
  if (!info.see_also.empty()) text += "\nSee also: " + info.see_also + "\n";
  return text;
}
}  // namespace

const CommonOptions& common_options() { return g_common; }

void bind_compact_flag(CLI::App& app, bool& compact, const std::string& help) {
  app.add_flag("--compact", compact, help);
}

std::string json_output(const io::Json& value, bool compact) { return io::dump_json(value, compact ? -1 : 2) + "\n"; }

int run_main(int argc, char** argv, const ToolInfo& info, const std::function<void(CLI::App&)>& bind,
             const std::function<ExitCode()>& body) {
  log::set_program(info.name);
  CLI::App app(info.purpose, info.name);
  app.footer(footer(info));
  app.get_formatter()->column_width(34);
  app.set_version_flag("--version", std::string(info.name) + " (emkit) " + EM_VERSION);
  if (!info.threads_help.empty())
    app.add_option("--threads", g_common.threads, info.threads_help)->check(CLI::NonNegativeNumber);
  g_common.max_image_pixels = io::kDefaultMaxImagePixels;
  app.add_option("--max_image_pixels", g_common.max_image_pixels,
                 "Refuse images of more pixels, from their header, before decoding (decompression bombs; default: "
                 "PIL's error threshold)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("-q,--quiet", g_common.quiet, "Only warnings and errors on stderr");
  app.add_flag("-v,--verbose", g_common.verbose, "Debug messages on stderr");
  try {
    bind(app);
    app.parse(parse_order(app, argc, argv));
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      app.exit(e);
      return 0;
    }
    log::error("{}{}", e.what(), suggestions(app, argc, argv));
    std::fprintf(stderr, "Run '%s --help' for usage.\n", info.name.c_str());
    return static_cast<int>(ExitCode::usage);
  } catch (const Error& e) {
    log::error("{}", e.what());
    return static_cast<int>(e.code());
  }
  io::set_max_image_pixels(g_common.max_image_pixels);
  if (g_common.quiet) log::set_level(log::Level::warning);
  if (g_common.verbose) log::set_level(log::Level::debug);
  try {
    return static_cast<int>(body());
  } catch (const Error& e) {
    if (*e.what() != '\0') log::error("{}", e.what());  // empty: said elsewhere (rank 0 of a data-parallel run)
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    return static_cast<int>(ExitCode::failure);
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    return static_cast<int>(ExitCode::failure);
  }
}

}  // namespace em::cli
