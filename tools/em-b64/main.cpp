// em-b64: image files -> the inference request JSON ({"instances": [{"data": base64}]}, docs/em-b64.md).
#include "common/cli.hpp"
#include "em/core/log.hpp"
#include "em/io/request.hpp"
#include "em/io/file.hpp"
#include "em/io/image.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string output = "-";
  em::cli::ToolInfo info{
      "em-b64",
      "Encode image files into the inference request JSON ({\"instances\": [{\"data\": BASE64}]}) that em-predict "
      "and em-serve take. With -o FILE the bytes equal the seed's Python script (json.dump, indent=4, sort_keys, "
      "no final newline); on stdout a final newline is added. A file that does not decode as an image is encoded "
      "anyway, with a warning.",
      "em-b64 IMAGE... [-o FILE]",
      "em-b64 cat.png | em-predict --model run/model",
      "em-predict(1), em-serve(1), docs/em-b64.md",
      /*threads_help=*/""};  // encoding runs on one thread: no --threads
  return em::cli::run_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("images", files, "Image files, in request order ('-' = stdin)")->required();
        app.add_option("-o,--output", output, "Write the request here (atomically) instead of stdout");
      },
      [&] {
        std::vector<std::string> payloads;
        for (const auto& f : files) {
          payloads.push_back(em::io::read_file(f));
          // The server decides; warn early so a wrong file is noticed before a 400 comes back.
          try {
            em::io::decode_image(payloads.back(), f == "-" ? "stdin" : f);
          } catch (const em::Error& e) {
            em::log::warn("{}; encoding it anyway", e.what());
          }
        }
        std::string request = em::io::encode_request(payloads);
        // The seed script writes no final newline; a terminal or a pipe to jq wants one.
        if (output == "-")
          em::io::write_stdout(request + "\n");
        else
          em::io::write_file_atomic(output, request);
        return em::ExitCode::ok;
      });
}
