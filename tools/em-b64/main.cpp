// em-b64: image files -> the inference request JSON of SPEC §7 ({"instances": [{"data": base64}]}).
#include "common/cli.hpp"
#include "em/infer/request.hpp"
#include "em/io/file.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string output = "-";
  em::cli::ToolInfo info{
      "em-b64",
      "Encode image files into the inference request JSON ({\"instances\": [{\"data\": BASE64}]}) that em-predict "
      "and em-serve take. For one file the bytes equal the seed's Python script (json.dump, indent=4, sort_keys).",
      "em-b64 IMAGE... [-o FILE]",
      "em-b64 cat.png | em-predict --model run/model",
      "em-predict(1), em-serve(1), docs/http-api.md"};
  return em::cli::run_main(
      argc, argv, info,
      [&](CLI::App& app) {
        app.add_option("images", files, "Image files, in request order ('-' = stdin)")->required();
        app.add_option("-o,--output", output, "Write the request here instead of stdout");
      },
      [&] {
        std::vector<std::string> payloads;
        for (const auto& f : files) payloads.push_back(em::io::read_file(f));
        em::io::write_file_atomic(output, em::infer::encode_request(payloads) + "\n");
        return em::ExitCode::ok;
      });
}
