// libFuzzer harness: the parser of Lake et al.'s class_labels.txt. The input becomes the
// class_labels.txt of a run folder that holds two valid training images and two test images.
#include <metalearn/data/lake.hpp>

#include "fuzz_support.hpp"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace {
void write_png(const std::filesystem::path& p) {
  static const unsigned char pixels[4] = {0, 255, 255, 0};
  std::filesystem::create_directories(p.parent_path());
  stbi_write_png(p.string().c_str(), 2, 2, 1, pixels, 2);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto root = fuzz::scratch() / "lake";
  static const bool ready = [&] {
    for (const char* f : {"run01/training/class01.png", "run01/training/class02.png",
                          "run01/test/item01.png", "run01/test/item02.png"})
      write_png(root / f);
    return true;
  }();
  (void)ready;
  std::ofstream(root / "run01" / "class_labels.txt", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  fuzz::expect_clean_error([&] { (void)metalearn::data::load_lake_runs(root.string()); });
  return 0;
}
