// Small synthetic segmentation datasets in the layout of docs/datasets.md, for the dataset, augmentation and task tests.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "em/io/image.hpp"
#include "em/io/json.hpp"
#include "test_support.hpp"

namespace em::test {

inline io::Image make_image(int width, int height, int channels, const std::function<uint8_t(int, int, int)>& value) {
  io::Image img;
  img.width = width;
  img.height = height;
  img.channels = channels;
  img.pixels.resize(img.size());
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) img.at(y, x, c) = value(y, x, c);
  return img;
}

// A dataset folder: write images, maps, split files and id2label.json under dir.
struct SegmentationFolder {
  TempDir tmp;
  std::filesystem::path dir = tmp / "data";

  void labels(const std::vector<std::string>& names, const std::string& file = "id2label.json") {
    io::Json j = io::Json::object();
    for (size_t i = 0; i < names.size(); ++i) j[std::to_string(i)] = names[i];
    io::write_json_file(dir / "resources" / file, j);
  }
  void image(const std::string& split, const std::string& rel, const io::Image& img) {
    io::write_png((dir / split / rel).string(), img);
  }
  void split_file(const std::string& split, const io::Json& entries, const std::string& name = "") {
    io::write_json_file(dir / split / (name.empty() ? split + ".json" : name), entries);
  }
  // Entry i: images/{i}.png (RGB, grey value 10 * i) with annotations/{i}.png = `map_of(i)`, listed in order.
  void add_split(const std::string& split, int n, const std::function<io::Image(int)>& map_of,
                 const std::string& file_name = "") {
    io::Json entries = io::Json::array();
    for (int i = 0; i < n; ++i) {
      const io::Image map = map_of(i);
      image(split, "annotations/" + std::to_string(i) + ".png", map);
      image(split, "images/" + std::to_string(i) + ".png",
            make_image(map.width, map.height, 3, [&](int, int, int) { return static_cast<uint8_t>(10 * i); }));
      entries.push_back({{"image", "images/" + std::to_string(i) + ".png"},
                         {"seg_map", "annotations/" + std::to_string(i) + ".png"}});
    }
    split_file(split, entries, file_name);
  }
};

}  // namespace em::test
