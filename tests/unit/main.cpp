// The Catch2 main of em_unit_tests: LibTorch kept to one thread so tests behave the same on any machine.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <torch/torch.h>

int main(int argc, char* argv[]) {
  torch::set_num_threads(1);
  return Catch::Session().run(argc, argv);
}
