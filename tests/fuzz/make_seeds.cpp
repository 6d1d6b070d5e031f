// Writes the seed corpora of the fuzz harnesses: one valid input per loader (and a few
// near-misses), so the fuzzers start from files that reach deep into each parser.
//
//   make_seeds OUT_DIR   -> OUT_DIR/{idx,image,checkpoint,lake}/...
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <metalearn/io/checkpoint.hpp>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace fs = std::filesystem;

namespace {
void write(const fs::path& p, const std::vector<unsigned char>& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
std::vector<unsigned char> idx(std::uint8_t rank, const std::vector<std::uint32_t>& dims) {
  std::vector<unsigned char> b{0, 0, 0x08, rank};
  std::uint32_t n = 1;
  for (auto d : dims) {
    n *= d;
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  }
  for (std::uint32_t i = 0; i < n; ++i) b.push_back(static_cast<unsigned char>(i * 37));
  return b;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const fs::path out(argv[1]);
  write(out / "idx" / "images", idx(3, {2, 3, 3}));
  write(out / "idx" / "labels", idx(1, {4}));

  const unsigned char px[16] = {0, 255, 128, 7, 255, 0, 9, 200, 1, 2, 3, 4, 250, 251, 252, 253};
  fs::create_directories(out / "image");
  stbi_write_png((out / "image" / "a.png").string().c_str(), 4, 4, 1, px, 4);
  stbi_write_bmp((out / "image" / "b.bmp").string().c_str(), 4, 4, 1, px);
  write(out / "image" / "c.pgm",
        {'P', '5', '\n', '2', ' ', '2', '\n', '2', '5', '5', '\n', 0, 255, 7, 9});

  metalearn::Tensor<float> w(metalearn::Shape{3, 2}, 0.5f), b(metalearn::Shape{2}, -1.f);
  std::int64_t step = 42;
  metalearn::Rng rng(1);
  metalearn::nn::ParameterList<float> params;
  params.add("w", w);
  params.add("b", b);
  metalearn::io::Checkpoint<float> ckpt;
  ckpt.tensors("model", params).counter("step", step).rng(rng);
  fs::create_directories(out / "checkpoint");
  ckpt.save((out / "checkpoint" / "seed.ckpt").string());

  const std::string labels =
      "run01/test/item01.png run01/training/class02.png\n"
      "run01/test/item02.png run01/training/class01.png\n";
  write(out / "lake" / "class_labels.txt",
        std::vector<unsigned char>(labels.begin(), labels.end()));
  return 0;
}
