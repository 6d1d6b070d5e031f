// libFuzzer harness: the IDX reader (raw, and gzip when zlib is available).
#include <metalearn/data/idx.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string raw = fuzz::write_input("input.idx", data, size);
  fuzz::expect_clean_error([&] { (void)metalearn::data::load_idx_images(raw); });
  fuzz::expect_clean_error([&] { (void)metalearn::data::load_idx_labels(raw); });
#ifdef METALEARN_HAS_ZLIB
  const std::string gz = fuzz::write_input("input.idx.gz", data, size);
  fuzz::expect_clean_error([&] { (void)metalearn::data::load_idx_images(gz); });
#endif
  return 0;
}
