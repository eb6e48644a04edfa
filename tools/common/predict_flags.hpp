// CLI11 bindings shared by the tools that run a trained model (em-predict, em-serve, em-eval): each flag has one
// name, one help text and one check. --batch_size is the one name for images per forward pass in every tool.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "em/infer/predictor.hpp"

namespace em::cli {

// --model DIR (required).
void bind_model_flag(CLI::App& app, std::string& model_dir);
// --precision auto|fp32|bf16 and --bf16 (= --precision bf16), for the tools that run a trained model; the pair is
// checked where it is resolved (tensor::precision_mode_of_flags: --bf16 with --precision auto/fp32 exits 2).
void bind_precision_flags(CLI::App& app, bool& bf16, std::string& precision);
// --device auto|cpu|cuda|cuda:N (default auto: CUDA when present, else the CPU; LOCAL_RANK picks the GPU under a
// launcher). Checked where it is resolved (tensor::resolve_device): an unusable device exits 2 naming the flag.
void bind_device_flag(CLI::App& app, std::string& device);
// --batch_size N (at least 1). `old_name` ("--max_batch_size"), when given, is an alias kept so that older
// commands still run.
void bind_batch_size_flag(CLI::App& app, int64_t& batch_size, const std::string& old_name = "");
// --model, --top_k, --threshold, --precision, --bf16 and --device: what em-predict and em-serve share.
void bind_predict_flags(CLI::App& app, std::string& model_dir, infer::PredictOptions& options);
// The same without --model (em-serve takes several).
void bind_predict_options(CLI::App& app, infer::PredictOptions& options);

// Where em-predict --draw writes each image's picture: OUT itself for one image (a .png file name), else the folder
// OUT with one PNG per image named as --output_dir names its label maps (infer::label_map_file_names). UsageError
// for "-" (stdout carries the response), a non-.png file for one image, and the folder of --output_dir (the
// label maps and the pictures would have one name).
std::vector<std::string> draw_paths(const std::string& out, const std::vector<std::string>& images, size_t num_images,
                                    const std::string& output_dir);

}  // namespace em::cli
