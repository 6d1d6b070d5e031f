// Loaders on files the tests write themselves (PNG through stb_image_write, IDX raw and
// gzip), every bad input, and an optional check on ../shared/data/omniglot.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <metalearn/metalearn.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "support/catch.hpp"
#include "support/errors.hpp"

namespace ml = metalearn;
namespace data = metalearn::data;
namespace fs = std::filesystem;
using ml::Shape;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d =
      fs::temp_directory_path() / ("metalearn_data_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A w x h greyscale PNG with the given bytes.
void write_png(const fs::path& p, int w, int h, const std::vector<unsigned char>& pixels) {
  fs::create_directories(p.parent_path());
  REQUIRE(stbi_write_png(p.string().c_str(), w, h, 1, pixels.data(), w) != 0);
}

// 4x4 image: top-left 2x2 block dark (0), the rest white (255); `shade` varies one pixel.
std::vector<unsigned char> block_image(unsigned char shade) {
  std::vector<unsigned char> px(16, 255);
  px[0] = px[1] = px[4] = px[5] = 0;
  px[15] = shade;
  return px;
}

void write_bytes(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<unsigned char> idx_bytes(std::uint8_t rank, const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& payload) {
  std::vector<unsigned char> b{0, 0, 0x08, rank};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

}  // namespace

TEST_CASE("resize_area: exact area averages", "[data]") {
  data::GreyImage img;
  img.height = img.width = 4;
  for (int i = 0; i < 16; ++i) img.pixels.push_back(static_cast<float>(i));
  const auto half = data::resize_area(img, 2);
  CHECK(half.pixels[0] == Approx((0 + 1 + 4 + 5) / 4.0));
  CHECK(half.pixels[3] == Approx((10 + 11 + 14 + 15) / 4.0));
  const auto three = data::resize_area(img, 3);  // each output covers 4/3 input pixels
  CHECK(three.pixels[0] == Approx((0 + 1.0 / 3 * 1 + 1.0 / 3 * 4 + 1.0 / 9 * 5) / (16.0 / 9)));
}

TEST_CASE("load_image_folder: Omniglot layout, values, groups, cache", "[data][io]") {
  const fs::path root = fresh_dir("folder");
  write_png(root / "alpha" / "c1" / "a.png", 4, 4, block_image(255));
  write_png(root / "alpha" / "c1" / "b.png", 4, 4, block_image(0));
  write_png(root / "alpha" / "c2" / "a.png", 4, 4, block_image(255));
  write_png(root / "beta" / "c3" / "x.png", 4, 4, block_image(255));
  write_png(root / "beta" / "c3" / "y.png", 4, 4, block_image(255));
  data::ImageFolderOptions o;
  o.size = 2;
  o.cache = (root.parent_path() / "folder.cache").string();
  fs::remove(o.cache);
  const auto f = data::load_image_folder(root.string(), o);
  REQUIRE(f.data.examples().shape() == Shape{5, 1, 2, 2});
  CHECK(f.data.num_classes() == 3);
  CHECK(f.class_names == std::vector<std::string>{"alpha/c1", "alpha/c2", "beta/c3"});
  CHECK(f.group_of == std::vector<std::int64_t>{0, 0, 1});
  CHECK(f.group_names == std::vector<std::string>{"alpha", "beta"});
  const float* px = f.data.examples().data();
  CHECK(px[0] == Approx(1.0f));  // inverted dark block: strokes are 1
  CHECK(px[1] == Approx(0.0f));
  CHECK(px[4 + 3] == Approx(0.25f));  // image b: one dark pixel of four in the last cell
  REQUIRE(fs::exists(o.cache));
  const auto again = data::load_image_folder(root.string(), o);  // from the cache
  CHECK((again.data.examples().array() == f.data.examples().array()).all());
  // A damaged cache is rebuilt, not trusted.
  {
    std::fstream c(o.cache, std::ios::in | std::ios::out | std::ios::binary);
    c.seekp(40);
    c.put('\x7f');
  }
  const auto rebuilt = data::load_image_folder(root.string(), o);
  CHECK((rebuilt.data.examples().array() == f.data.examples().array()).all());
  // Loaders started together (two runs, mpirun) each build the cache and all succeed.
  fs::remove(o.cache);
  std::vector<std::thread> loaders;
  std::vector<int> ok(4, 0);
  for (std::size_t t = 0; t < ok.size(); ++t)
    loaders.emplace_back([&, t] {
      try {
        ok[t] = data::load_image_folder(root.string(), o).data.examples().numel() == 20;
      } catch (const std::exception&) {  // the fixed ".tmp" name of before: a lost rename
        ok[t] = 0;
      }
    });
  for (auto& l : loaders) l.join();
  CHECK(ok == std::vector<int>(4, 1));
  CHECK(data::load_image_folder(root.string(), o).data.examples().data()[0] == Approx(1.0f));
  // Other options do not reuse the cache.
  o.invert = false;
  CHECK(data::load_image_folder(root.string(), o).data.examples().data()[0] == Approx(0.0f));
}

TEST_CASE("load_image_folder: bad folders and files name the problem", "[data][io][error]") {
  const fs::path root = fresh_dir("bad_folder");
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_image_folder((root / "nope").string()); },
      {"metalearn::data::load_image_folder", "nope", "not a folder"});
  ml::test::check_throws<ml::IoError>([&] { (void)data::load_image_folder(root.string()); },
                                      {"no images"});
  write_png(root / "g" / "c" / "a.png", 4, 4, block_image(0));
  write_png(root / "g" / "c" / "b.png", 5, 4, std::vector<unsigned char>(20, 0));
  ml::test::check_throws<ml::IoError>([&] { (void)data::load_image_folder(root.string()); },
                                      {"mixed sizes", "b.png", "5x4", "4x4"});
  fs::remove(root / "g" / "c" / "b.png");
  write_bytes(root / "g" / "c" / "broken.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
  ml::test::check_throws<ml::IoError>([&] { (void)data::load_image_folder(root.string()); },
                                      {"cannot be decoded", "broken.png"});
}

TEST_CASE("IDX files: raw and gzip, and every malformed header", "[data][io][error]") {
  const fs::path dir = fresh_dir("idx");
  const std::vector<unsigned char> pixels{0, 255, 51, 102, 255, 0, 0, 255};  // two 2x2 images
  write_bytes(dir / "images", idx_bytes(3, {2, 2, 2}, pixels));
  write_bytes(dir / "labels", idx_bytes(1, {2}, {7, 3}));
  const auto ds = data::load_idx((dir / "images").string(), (dir / "labels").string());
  REQUIRE(ds.examples().shape() == Shape{2, 1, 2, 2});
  CHECK(ds.examples().data()[2] == Approx(0.2f));
  CHECK(ds.labels() == std::vector<std::int64_t>{7, 3});
#if defined(METALEARN_HAS_ZLIB)
  {
    const auto raw = idx_bytes(3, {2, 2, 2}, pixels);
    gzFile gz = gzopen((dir / "images.gz").string().c_str(), "wb");
    gzwrite(gz, raw.data(), static_cast<unsigned>(raw.size()));
    gzclose(gz);
  }
  CHECK(
      (data::load_idx_images((dir / "images.gz").string()).array() == ds.examples().array()).all());
  write_bytes(dir / "bad.gz", {1, 2, 3, 4, 5});
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_idx_images((dir / "bad.gz").string()); }, {"bad.gz"});
#endif
  write_bytes(dir / "wrong_magic", idx_bytes(1, {2}, {1, 2}));
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_idx_images((dir / "wrong_magic").string()); },
      {"metalearn::data::load_idx_images", "magic number 0x00000801", "00000803"});
  auto truncated = idx_bytes(3, {2, 2, 2}, pixels);
  truncated.resize(truncated.size() - 3);
  write_bytes(dir / "truncated", truncated);
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_idx_images((dir / "truncated").string()); },
      {"truncated", "header says"});
  write_bytes(dir / "three_labels", idx_bytes(1, {3}, {1, 2, 3}));
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_idx((dir / "images").string(), (dir / "three_labels").string()); },
      {"metalearn::data::load_idx", "2 images", "3 labels"});
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_idx_labels((dir / "missing").string()); }, {"cannot open", "missing"});
}

TEST_CASE("Lake runs: episodes from class_labels.txt, and malformed runs", "[data][io][error]") {
  const fs::path root = fresh_dir("lake");
  for (int c = 1; c <= 3; ++c) {
    write_png(root / "run01" / "training" / ("class0" + std::to_string(c) + ".png"), 4, 4,
              block_image(static_cast<unsigned char>(c * 60)));
    write_png(root / "run01" / "test" / ("item0" + std::to_string(c) + ".png"), 4, 4,
              block_image(0));
  }
  {
    std::ofstream labels(root / "run01" / "class_labels.txt");
    labels << "run01/test/item01.png run01/training/class03.png\n"
           << "run01/test/item02.png run01/training/class01.png\n"
           << "run01/test/item03.png run01/training/class02.png\n";
  }
  data::ImageFolderOptions o;
  o.size = 2;
  const auto runs = data::load_lake_runs(root.string(), o);
  REQUIRE(runs.size() == 1);
  const auto& e = runs[0].episode;
  CHECK(runs[0].name == "run01");
  CHECK(e.ways == 3);
  CHECK(e.support_inputs.shape() == Shape{3, 1, 2, 2});
  CHECK(e.query_labels == std::vector<std::int64_t>{2, 0, 1});
  {
    std::ofstream labels(root / "run01" / "class_labels.txt", std::ios::app);
    labels << "run01/test/item01.png\n";
  }
  ml::test::check_throws<ml::IoError>(
      [&] { (void)data::load_lake_runs(root.string(), o); },
      {"metalearn::data::load_lake_runs", "class_labels.txt", "line 4"});
  {
    std::ofstream labels(root / "run01" / "class_labels.txt");
    labels << "run01/test/item01.png run01/training/class09.png\n";
  }
  ml::test::check_throws<ml::IoError>([&] { (void)data::load_lake_runs(root.string(), o); },
                                      {"line 1", "class09.png", "not an image"});
}

TEST_CASE("split_omniglot holds out whole alphabets, omniglot_test_set keeps every class",
          "[data][omniglot]") {
  // Four alphabets of 2, 3, 1 and 2 characters, one 2x2 image per character.
  data::ImageFolder folder{data::ClassDataset<float>(ml::Tensor<float>(Shape{8, 1, 2, 2}, 0.f),
                                                     {0, 1, 2, 3, 4, 5, 6, 7}),
                           {},
                           {0, 0, 1, 1, 1, 2, 3, 3},
                           {"a", "b", "c", "d"}};
  ml::Rng rng(4);
  const data::Omniglot og = data::split_omniglot(folder, {1, 1}, rng);
  CHECK(og.data.num_classes() == 32);  // every rotation a class
  CHECK(og.alphabets == folder.group_names);
  REQUIRE(og.alphabet_of.size() == 32);
  for (std::size_t c = 0; c < 32; ++c) CHECK(og.alphabet_of[c] == folder.group_of[c / 4]);
  std::set<std::int64_t> seen;
  std::map<std::int64_t, int> part_of_alphabet;
  int part = 0;
  for (const auto* classes : {&og.train, &og.validation, &og.test}) {
    ++part;
    for (const std::int64_t c : *classes) {
      CHECK(seen.insert(c).second);  // in one part only
      const std::int64_t a = og.alphabet_of[static_cast<std::size_t>(c)];
      CHECK((part_of_alphabet.count(a) == 0 || part_of_alphabet[a] == part));
      part_of_alphabet[a] = part;
    }
  }
  CHECK(seen.size() == 32);
  CHECK(part_of_alphabet.size() == 4);
  CHECK(og.validation.size() % 4 == 0);
  ml::test::check_throws<ml::InvalidArgument>(
      [&] {
        (void)data::split_omniglot(folder, {2, 2}, rng);
      },
      {"split_omniglot", "4 alphabets", "at least one more"});
  const data::Omniglot all = data::omniglot_test_set(folder);
  CHECK(all.train.empty());
  CHECK(all.validation.empty());
  REQUIRE(all.test.size() == 32);
  for (std::int64_t c = 0; c < 32; ++c) CHECK(all.test[static_cast<std::size_t>(c)] == c);
}

TEST_CASE("Omniglot background set (skipped when ../shared is absent)", "[data][io][omniglot]") {
  const fs::path shared =
      fs::path(METALEARN_SOURCE_DIR) / ".." / "shared" / "data" / "omniglot" / "images_background";
  if (!fs::is_directory(shared)) {
    WARN("skipped: " << shared.string() << " is absent");
    return;
  }
  // Two alphabets, linked into a private root, keep the test fast.
  const fs::path root = fresh_dir("omniglot");
  std::vector<fs::path> alphabets;
  for (const auto& e : fs::directory_iterator(shared)) alphabets.push_back(e.path());
  std::sort(alphabets.begin(), alphabets.end());
  REQUIRE(alphabets.size() >= 2);
  for (int i = 0; i < 2; ++i)
    fs::create_directory_symlink(alphabets[i], root / alphabets[i].filename());
  const auto f = data::load_image_folder(root.string());
  CHECK(f.data.examples().shape()[1] == 1);
  CHECK(f.data.examples().shape()[2] == 28);
  CHECK(f.group_names.size() == 2);
  for (std::int64_t c = 0; c < f.data.num_classes(); ++c) CHECK(f.data.examples_of(c).size() == 20);
  // Strokes are 1 after inversion: most of each image is background near 0.
  CHECK(f.data.examples().array().mean() < 0.3f);
  const auto rotated = data::with_rotations(f.data);
  data::EpisodeSampler<float> sampler(rotated, {20, 1, 5});
  ml::Rng rng{1};
  CHECK(sampler.sample(rng).support_inputs.shape() == Shape{20, 1, 28, 28});
}

// Found by tests/fuzz/fuzz_image: a 59-byte BMP declaring 4 x 16,580,356 pixels, which stb
// would allocate and decode (a 15 s hang under the fuzzer). Rejected from the header.
TEST_CASE("read_grey_image: a header declaring more pixels than the file holds",
          "[data][io][fuzz-regression]") {
  const std::vector<unsigned char> bmp{
      0x42, 0x4d, 0x66, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00, 0x28,
      0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0xff, 0xfc, 0x00, 0x01, 0x00, 0x18, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32, 0x01, 0x00, 0x18, 0x09, 0xc8,
      0xc8, 0xc8, 0x00, 0x00, 0x00, 0xc9, 0x00, 0x00, 0x00, 0x00, 0x80, 0x07, 0x07, 0x07};
  const fs::path p = fresh_dir("bomb") / "bomb.bmp";
  write_bytes(p, bmp);
  ml::test::check_throws<ml::IoError>([&] { data::read_grey_image(p.string()); },
                                      {"read_grey_image", "bomb.bmp", "declares", "59 bytes"});
}

// Found by tests/fuzz/fuzz_image: a PNG with an empty IDAT chunk (stb_image then calls
// memcpy with a null source and length 0; see tests/ubsan.supp). Must fail cleanly.
TEST_CASE("read_grey_image: a PNG with an empty IDAT chunk", "[data][io][fuzz-regression]") {
  const std::vector<unsigned char> png{
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
      0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x80, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x8c,
      0x9a, 0xc1, 0xa2, 0x00, 0x00, 0x00, 0x00, 0x49, 0x44, 0x41, 0x54, 0x78, 0x5b, 0x63, 0x66,
      0xf8, 0xcf, 0x78, 0x9c, 0xe1, 0x3f, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe7,
      0x09, 0x46, 0x30, 0xf8, 0xc5, 0xc8, 0xc8, 0x08, 0x00, 0x39, 0xd0, 0x04, 0x9e, 0xa4, 0x49,
      0xf8, 0xed, 0x00, 0x00, 0x00, 0x00, 0x29, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  const fs::path p = fresh_dir("empty_idat") / "empty_idat.png";
  write_bytes(p, png);
  try {
    const auto img = data::read_grey_image(p.string());
    CHECK(img.pixels.size() == static_cast<std::size_t>(img.width * img.height));
  } catch (const ml::IoError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("empty_idat.png"));
  }
}

// Found by tests/fuzz/fuzz_image (in CI): a 82-byte PNG whose chunk declares about 2 GB;
// stb reserved the declared length before reading (a 2 GB allocation). Rejected first.
TEST_CASE("read_grey_image: a PNG chunk longer than the file", "[data][io][fuzz-regression]") {
  const std::vector<unsigned char> png{
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x10, 0x00, 0x00, 0x00,
      0x00, 0x8c, 0x9a, 0xc1, 0xa2, 0x00, 0x00, 0x00, 0x19, 0x49, 0x44, 0x41, 0x54, 0x78,
      0xa6, 0xdc, 0x99, 0x17, 0x30, 0x87, 0x63, 0x1e, 0x3f, 0x03, 0x52, 0x00, 0x00, 0xff,
      0x00, 0x00, 0x04, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x8c, 0xc5, 0xc8, 0xc8,
      0x45, 0x4e, 0x44, 0x19, 0x49, 0x44, 0x41, 0x54, 0x78, 0x5e, 0x23, 0x82};
  const fs::path p = fresh_dir("long_chunk") / "long_chunk.png";
  write_bytes(p, png);
  ml::test::check_throws<ml::IoError>([&] { data::read_grey_image(p.string()); },
                                      {"read_grey_image", "long_chunk.png", "PNG chunk", "remain"});
}

// Found by tests/fuzz/fuzz_lake: a class_labels.txt naming a file longer than the system
// allows made std::filesystem throw its own exception out of load_lake_runs.
TEST_CASE("load_lake_runs: a file name too long for the system is an IoError",
          "[data][io][fuzz-regression]") {
  const fs::path root = fresh_dir("lake_long_name");
  write_png(root / "run01" / "training" / "class01.png", 4, 4, block_image(255));
  std::ofstream(root / "run01" / "class_labels.txt")
      << "run01/test/" << std::string(300, 'a') << ".png run01/training/class01.png\n";
  ml::test::check_throws<ml::IoError>([&] { (void)data::load_lake_runs(root.string()); },
                                      {"load_lake_runs", "aaaa"});
}

TEST_CASE("Multi-Fashion: built from IDX items, deterministic, items where they belong",
          "[mtl][data][io]") {
  using Catch::Matchers::WithinAbs;
  // Three 28x28 items: item 0 lit in a 4x4 block at its top-left corner, items 1 and 2 in
  // a 6x6 one at their bottom-right, so on the canvas (right item at offset 6) the left and
  // right blocks never overlap, and only a left item 0 reaches the output's top-left 4x4
  // (canvas [0, 5.1)).
  const fs::path dir = fresh_dir("fashion");
  std::vector<std::uint8_t> pixels(3 * 28 * 28, 0);
  const auto block = [](int item) { return item == 0 ? 4 : 6; };
  for (int item = 0; item < 3; ++item)
    for (int r = 0; r < block(item); ++r)
      for (int c = 0; c < block(item); ++c) {
        const int rr = item == 0 ? r : 22 + r, cc = item == 0 ? c : 22 + c;
        pixels[static_cast<std::size_t>(item * 784 + rr * 28 + cc)] =
            static_cast<std::uint8_t>(100 + 50 * item);
      }
  write_bytes(dir / "train-images-idx3-ubyte", idx_bytes(3, {3, 28, 28}, pixels));
  write_bytes(dir / "train-labels-idx1-ubyte", idx_bytes(1, {3}, {4, 7, 9}));
  const auto items = ml::mtl::load_fashion_mnist<float>(dir.string(), true);
  REQUIRE(items.examples().shape() == Shape{3, 1, 28, 28});
  ml::mtl::MultiFashionOptions o;
  o.examples = 6;
  ml::Rng a(3), b(3);
  const auto mf = ml::mtl::multi_fashion(items, o, a);
  const auto again = ml::mtl::multi_fashion(items, o, b);
  REQUIRE(mf.all().inputs.shape() == Shape{6, 1, 28, 28});
  CHECK((mf.all().inputs.array() == again.all().inputs.array()).all());
  const auto& left = mf.all().tasks[0].labels;
  const auto& right = mf.all().tasks[1].labels;
  const std::vector<std::int64_t> ordinals{0, 1, 2};  // of the ids 4, 7, 9: the items here
  const double scale = (28.0 / 36) * (28.0 / 36);     // area averaging keeps the mean
  for (std::int64_t i = 0; i < 6; ++i) {
    CHECK(left[i] != right[i]);  // two different items
    const float* img = mf.all().inputs.data() + i * 784;
    double total = 0, corner = 0;
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) {
        total += img[r * 28 + c];
        if (r < 4 && c < 4) corner += img[r * 28 + c];
      }
    // Mass: the block's pixels of (100 + 50 item) / 255.
    const auto mass = [&](std::int64_t item) {
      const int side = block(static_cast<int>(item));
      return side * side * (100 + 50 * static_cast<double>(item)) / 255.0;
    };
    const double left_mass = mass(left[i]), right_mass = mass(right[i]);
    CHECK_THAT(total, WithinAbs((left_mass + right_mass) * scale, 1e-3));
    CHECK_THAT(corner, WithinAbs(left[i] == 0 ? left_mass * scale : 0.0, 1e-3));
  }
  // One of every item on the left in the first pass (a permutation).
  std::vector<std::int64_t> first(left.begin(), left.begin() + 3);
  std::sort(first.begin(), first.end());
  CHECK(first == ordinals);
}
