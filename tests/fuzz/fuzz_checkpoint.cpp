// libFuzzer harness: the checkpoint reader. The input's last 8 bytes are replaced by its
// checksum, so mutations reach the parser instead of all failing the checksum.
#include <cstring>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/random.hpp>
#include <vector>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= 8) {
    const std::uint64_t sum =
        metalearn::io::detail::fnv1a(reinterpret_cast<const char*>(bytes.data()), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  }
  const std::string path = fuzz::write_input("input.ckpt", bytes.data(), bytes.size());
  // What make_seeds.cpp saves: two tensors, a counter, a generator.
  metalearn::Tensor<float> w(metalearn::Shape{3, 2}), b(metalearn::Shape{2});
  std::int64_t step = 0;
  metalearn::Rng rng(1);
  metalearn::nn::ParameterList<float> params;
  params.add("w", w);
  params.add("b", b);
  metalearn::io::Checkpoint<float> ckpt;
  ckpt.tensors("model", params).counter("step", step).rng(rng);
  fuzz::expect_clean_error([&] { ckpt.load(path); });
  fuzz::expect_clean_error([&] { ckpt.load(path, metalearn::io::Unregistered::ignore); });
  return 0;
}
