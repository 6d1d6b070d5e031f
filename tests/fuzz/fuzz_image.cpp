// libFuzzer harness: the image reader (stb_image behind read_grey_image) and the resize.
#include <metalearn/data/image.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input("input.png", data, size);
  fuzz::expect_clean_error([&] {
    const auto img = metalearn::data::read_grey_image(path);
    (void)metalearn::data::resize_area(img, 28);
  });
  return 0;
}
