// ValidationReport::to_text: the report for people. The summary is laid out from its JSON shape, for every
// algorithm alike: per-split objects become a table with a column per split, lists of records a table with a column
// per field, small objects one line, and numbers have 4 significant digits (--json keeps them whole).
#include "em/data/validate.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <fmt/ranges.h>

namespace em::data {
namespace {

using Rows = std::vector<std::vector<std::string>>;
const std::string kIndent = "  ";

std::string cell(const io::Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
  return io::dump_json(v);  // integers, booleans, null; a nested value stays JSON
}

template <typename Predicate>
bool all_values(const io::Json& v, Predicate p) {
  return std::all_of(v.begin(), v.end(), p);
}
bool is_scalar(const io::Json& v) { return !v.is_structured(); }
bool is_record(const io::Json& v) { return v.is_object() && all_values(v, is_scalar); }
bool is_word(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; });
}

// A record of at most 4 named values, which reads well on one line ("width: min 28, max 640").
bool is_short_record(const io::Json& v) {
  if (!is_record(v) || v.size() > 4) return false;
  for (const auto& e : v.items())
    if (!is_word(e.key())) return false;
  return true;
}

bool looks_numeric(const std::string& s) {
  if (s.empty() || s == "-" || s == "null") return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// Rows under `indent`, the first one a header: columns of numbers right-aligned, others left-aligned, two spaces
// apart.
std::string format_table(const Rows& rows, const std::string& indent) {
  std::vector<size_t> width;
  std::vector<bool> right;
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (width.size() <= c) width.push_back(0), right.push_back(true);
      width[c] = std::max(width[c], rows[r][c].size());
      if (r > 0 && !looks_numeric(rows[r][c])) right[c] = false;
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      line += right[c] ? fmt::format("{:>{}}", row[c], width[c]) : fmt::format("{:<{}}", row[c], width[c]);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line + "\n";
  }
  return out;
}

// The keys of the objects in `objects` (those that are objects), in first-seen order.
std::vector<std::string> union_of_keys(const std::vector<const io::Json*>& objects) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  for (const io::Json* o : objects)
    if (o->is_object())
      for (const auto& item : o->items())
        if (seen.insert(item.key()).second) keys.push_back(item.key());
  return keys;
}

// One row per key of the columns' objects: its value in each column, "-" where a column lacks it.
void add_rows(const std::vector<const io::Json*>& columns, const std::string& prefix, Rows& rows) {
  for (const std::string& key : union_of_keys(columns)) {
    std::vector<const io::Json*> inner;
    for (const io::Json* c : columns) inner.push_back(c->is_object() && c->contains(key) ? &(*c)[key] : nullptr);
    const bool nested = std::any_of(inner.begin(), inner.end(), [](const io::Json* v) { return v && v->is_object(); });
    std::vector<std::string> row{prefix + key + (nested ? ":" : "")};
    for (const io::Json* v : inner) row.push_back(nested ? "" : v ? cell(*v) : "-");
    rows.push_back(std::move(row));
    if (!nested) continue;
    static const io::Json kNone = io::Json::object();
    for (auto& v : inner) v = v && v->is_object() ? v : &kNone;
    add_rows(inner, prefix + kIndent, rows);
  }
}

// {"train": {...}, "validation": {...}} as a table with a column per split.
std::string columns_table(const io::Json& value, const std::string& indent) {
  Rows rows(1, std::vector<std::string>{""});
  std::vector<const io::Json*> columns;
  for (const auto& item : value.items()) rows[0].push_back(item.key()), columns.push_back(&item.value());
  add_rows(columns, "", rows);
  return format_table(rows, indent);
}

// [{"id": 1, "name": "person"}, ...] as a table with a column per field.
std::string records_table(const io::Json& value, const std::string& indent) {
  std::vector<const io::Json*> records;
  for (const auto& r : value) records.push_back(&r);
  const std::vector<std::string> keys = union_of_keys(records);
  Rows rows{keys};
  for (const io::Json* r : records) {
    rows.emplace_back();
    for (const auto& k : keys) rows.back().push_back(r->contains(k) ? cell((*r)[k]) : "-");
  }
  return format_table(rows, indent);
}

void render(const std::string& key, const io::Json& v, const std::string& indent, std::string& out) {
  const std::string head = indent + key + ":";
  if (is_scalar(v)) {
    out += head + " " + cell(v) + "\n";
  } else if (v.empty()) {
    out += head + " (none)\n";
  } else if (v.is_array() && all_values(v, is_scalar)) {
    std::vector<std::string> cells;
    for (const auto& e : v) cells.push_back(cell(e));
    out += fmt::format("{} {}\n", head, fmt::join(cells, ", "));
  } else if (v.is_array() && all_values(v, is_record)) {
    out += head + "\n" + records_table(v, indent + kIndent);
  } else if (v.is_object() && all_values(v, [](const io::Json& e) { return e.is_object(); })) {
    out += head + "\n" + columns_table(v, indent + kIndent);
  } else if (is_short_record(v)) {
    std::vector<std::string> pairs;
    for (const auto& e : v.items()) pairs.push_back(e.key() + " " + cell(e.value()));
    out += fmt::format("{} {}\n", head, fmt::join(pairs, ", "));
  } else if (v.is_object()) {
    out += head + "\n";
    for (const auto& e : v.items()) render(e.key(), e.value(), indent + kIndent, out);
  } else {
    out += head + " " + io::dump_json(v) + "\n";  // a list of mixed values: no summary has one
  }
}

void list_problems(const char* title, const std::vector<Problem>& problems, std::string& out) {
  if (problems.empty()) return;
  out += fmt::format("{} ({}):\n", title, problems.size());
  for (const auto& p : problems) out += fmt::format("  {}: {}\n", p.path, p.reason);
}

}  // namespace

std::string ValidationReport::to_text() const {
  std::string out = fmt::format("{} dataset {}\n", algo, dir);
  list_problems("problems", problems, out);
  list_problems("warnings", warnings, out);
  if (!summary.empty()) {
    out += "summary:\n";
    for (const auto& [key, value] : summary.items()) render(key, value, kIndent, out);
  }
  out += ok() ? "valid\n" : fmt::format("invalid: {} problem(s)\n", problems.size());
  return out;
}

}  // namespace em::data
