#include "runner/train/data.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "runner/base/errors.h"

namespace runner {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kRecord = 3073;  // 1 label byte + 3 × 32 × 32 pixels
constexpr int64_t kPixels = 3072;

const char* const kHowToGet =
    "get CIFAR-10 with `runner data fetch cifar10 DIR` (downloads cifar-10-binary.tar.gz and checks its MD5), "
    "then point data.root or $CIFAR10_ROOT at DIR";

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::error_code ec;
  const auto size_before = fs::file_size(path, ec);
  const auto time_before = fs::last_write_time(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open");
  std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
  if (in.bad()) throw DataError(path.string() + ": read error");
  // A file rewritten under us reads as a mix of old and new: refuse it.
  if (fs::file_size(path, ec) != size_before || fs::last_write_time(path, ec) != time_before ||
      bytes.size() != size_before)
    throw DataError(path.string() + ": the file changed while it was being read; try again once it is complete");
  return bytes;
}

/// Appends the records of one binary batch file, up to `want` (0 = all).
void read_cifar_file(const fs::path& path, std::vector<uint8_t>& pixels, std::vector<int64_t>& labels, int64_t want) {
  if (!fs::exists(path)) throw DataError(path.string() + ": missing; " + kHowToGet);
  const std::vector<uint8_t> bytes = read_bytes(path);
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0 || size % kRecord != 0)
    throw DataError(path.string() + ": " + std::to_string(size) + " bytes is not a whole number of " +
                    std::to_string(kRecord) + "-byte records (truncated or not a CIFAR-10 binary batch)");
  const int64_t records = size / kRecord;
  const int64_t take = want > 0 ? std::min(want, records) : records;
  for (int64_t r = 0; r < take; ++r) {
    const uint8_t label = bytes[static_cast<size_t>(r * kRecord)];
    if (label > 9)
      throw DataError(path.string() + ": record " + std::to_string(r) + " has label " + std::to_string(label) +
                      " (labels are 0-9; is this CIFAR-100 or a corrupt file?)");
    labels.push_back(label);
    const auto begin = bytes.begin() + r * kRecord + 1;
    pixels.insert(pixels.end(), begin, begin + kPixels);
  }
}

ImageSet to_image_set(std::vector<uint8_t>& pixels, std::vector<int64_t>& labels, int64_t c, int64_t h, int64_t w) {
  const auto n = static_cast<int64_t>(labels.size());
  ImageSet set;
  set.images = torch::from_blob(pixels.data(), {n, c, h, w}, torch::kUInt8).clone();
  set.labels = torch::from_blob(labels.data(), {n}, torch::kInt64).clone();
  return set;
}

ImageSet read_cifar_split(const fs::path& root, const std::vector<std::string>& files, int64_t limit) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const auto& file : files) {
    const int64_t want = limit > 0 ? limit - static_cast<int64_t>(labels.size()) : 0;
    if (limit > 0 && want <= 0) break;
    read_cifar_file(root / file, pixels, labels, want);
  }
  return to_image_set(pixels, labels, 3, 32, 32);
}

std::vector<std::string> read_class_names(const fs::path& root) {
  std::vector<std::string> names;
  std::ifstream in(root / "batches.meta.txt");
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.find_first_not_of(" \r\t") != std::string::npos)
      names.push_back(line.substr(0, line.find_last_not_of(" \r\t") + 1));
  if (names.size() != 10)
    names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

// Decoding with libpng and libjpeg-turbo, both fuzzed upstream (OSS-Fuzz): the
// stb_image in Debian 12 overflows a Huffman table on a crafted JPEG (found by
// fuzz/fuzz_image_folder; regression input in fuzz/corpus/image_folder/).
constexpr int64_t kMaxImagePixels = 4096 * 4096;  // larger is a decompression bomb, not a training image

struct Decoded {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  ///< HWC, 8 bits per channel
};

/// libpng's simplified API allocates a chunk's declared length before it finds
/// the file too short: a 327-byte PNG declaring a 1.7 GB text chunk took 1.8 GB
/// (found by fuzz/fuzz_image_folder). Every chunk must fit in the file first.
void check_png_chunks_fit(const std::vector<uint8_t>& bytes, const fs::path& file) {
  size_t at = 8;  // after the signature; a short or wrong signature is libpng's to report
  while (at + 8 <= bytes.size()) {
    const uint32_t length = (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) |
                            (uint32_t{bytes[at + 2]} << 8) | uint32_t{bytes[at + 3]};
    const size_t left = bytes.size() - at;
    if (length > left || left - length < 12)
      throw DataError(file.string() + ": corrupt PNG: a chunk at byte " + std::to_string(at) + " claims " +
                      std::to_string(length) + " bytes, but the file has " + std::to_string(left) + " left");
    if (std::memcmp(&bytes[at + 4], "IEND", 4) == 0) return;
    at += 12 + length;  // length, type, data, CRC
  }
}

Decoded decode_png(const std::vector<uint8_t>& bytes, const fs::path& file) {
  check_png_chunks_fit(bytes, file);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()) == 0)
    throw DataError(file.string() + ": cannot decode PNG: " + image.message);
  if (static_cast<int64_t>(image.width) * image.height > kMaxImagePixels) {
    png_image_free(&image);
    throw DataError(file.string() + ": PNG is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                    " pixels; at most 4096x4096 are read");
  }
  image.format = PNG_FORMAT_RGB;  // grey, palette and 16-bit images are converted; alpha over black
  Decoded out;
  out.width = static_cast<int>(image.width), out.height = static_cast<int>(image.height);
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr) == 0)
    throw DataError(file.string() + ": cannot decode PNG: " + image.message);
  return out;
}

Decoded decode_jpeg(const std::vector<uint8_t>& bytes, const fs::path& file) {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h != nullptr) tjDestroy(h);
    }
  } handle;
  if (handle.h == nullptr) throw DataError(file.string() + ": cannot start the JPEG decoder");
  auto fail = [&] { return DataError(file.string() + ": cannot decode JPEG: " + tjGetErrorStr2(handle.h)); };
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  auto* data = const_cast<unsigned char*>(bytes.data());  // TurboJPEG 2.x takes a non-const pointer; it only reads
  if (tjDecompressHeader3(handle.h, data, bytes.size(), &width, &height, &subsampling, &colorspace) != 0) throw fail();
  if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > kMaxImagePixels)
    throw DataError(file.string() + ": JPEG is " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels; at most 4096x4096 are read");
  Decoded out;
  out.width = width, out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  if (tjDecompress2(handle.h, data, bytes.size(), out.rgb.data(), width, 0, height, TJPF_RGB, 0) != 0 &&
      tjGetErrorCode(handle.h) == TJERR_FATAL)
    throw fail();  // TJERR_WARNING (e.g. a truncated scan) still yields a whole image
  return out;
}

ImageSet read_folder_split(const fs::path& dir, const std::vector<std::string>& classes, int64_t limit,
                           std::array<int64_t, 3>& shape) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (size_t k = 0; k < classes.size(); ++k) {
    const fs::path class_dir = dir / classes[k];
    if (!fs::is_directory(class_dir)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(class_dir)) {
      std::string ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::string ext = file.extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      const std::vector<uint8_t> bytes = read_bytes(file);
      const Decoded image = ext == ".png" ? decode_png(bytes, file) : decode_jpeg(bytes, file);
      const int w = image.width, h = image.height;
      const uint8_t* data = image.rgb.data();
      if (shape[0] == 0) shape = {3, h, w};
      if (shape[1] != h || shape[2] != w) {
        throw DataError(file.string() + ": image is " + std::to_string(w) + "x" + std::to_string(h) +
                        " but earlier images are " + std::to_string(shape[2]) + "x" + std::to_string(shape[1]) +
                        " (all images must have one size)");
      }
      // Decoders give HWC; we hold CHW like the CIFAR-10 binary layout.
      const size_t plane = static_cast<size_t>(w) * static_cast<size_t>(h);
      const size_t base = pixels.size();
      pixels.resize(base + 3 * plane);
      for (size_t p = 0; p < plane; ++p)
        for (size_t c = 0; c < 3; ++c) pixels[base + c * plane + p] = data[p * 3 + c];
      labels.push_back(static_cast<int64_t>(k));
    }
  }
  if (labels.empty()) throw DataError(dir.string() + ": no .png or .jpg images in any class folder");
  ImageSet set = to_image_set(pixels, labels, shape[0], shape[1], shape[2]);
  if (limit > 0 && limit < set.size()) {
    // Class folders are read in order; a shuffled prefix keeps every class in a limited set.
    const torch::Tensor order =
        torch::randperm(set.size(), torch::make_generator<at::CPUGeneratorImpl>(0)).narrow(0, 0, limit);
    set.images = set.images.index_select(0, order);
    set.labels = set.labels.index_select(0, order);
  }
  return set;
}

}  // namespace

torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& label) {
  // By signature, not by name: a photo saved as .png that is a JPEG still reads.
  static const uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Decoded image;
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) {
    image = decode_png(bytes, label);
  } else if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
    image = decode_jpeg(bytes, label);
  } else {
    throw DataError(label + ": not a PNG or JPEG image (" +
                    (bytes.empty() ? std::string("an empty file") : "its first bytes are neither signature") + ")");
  }
  const torch::Tensor hwc = torch::from_blob(image.rgb.data(), {image.height, image.width, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).contiguous();
}

torch::Tensor read_image(const std::string& path) {
  if (!fs::is_regular_file(path)) throw DataError(path + ": no such image file");
  return decode_image(read_bytes(path), path);
}

torch::Tensor fit_image(const torch::Tensor& chw, int64_t height, int64_t width) {
  namespace F = torch::nn::functional;
  const int64_t h = chw.size(1), w = chw.size(2);
  if (h == height && w == width) return chw;
  // The shorter side to the model's, keeping the aspect ratio; then the centre.
  const double scale = std::max(static_cast<double>(height) / static_cast<double>(h),
                                static_cast<double>(width) / static_cast<double>(w));
  const int64_t sh = std::max(height, static_cast<int64_t>(std::lround(static_cast<double>(h) * scale)));
  const int64_t sw = std::max(width, static_cast<int64_t>(std::lround(static_cast<double>(w) * scale)));
  // Antialiased when shrinking: a photo scaled down to 32x32 without it aliases badly.
  const torch::Tensor scaled =
      F::interpolate(chw.unsqueeze(0).to(torch::kFloat), F::InterpolateFuncOptions()
                                                             .size(std::vector<int64_t>{sh, sw})
                                                             .mode(torch::kBilinear)
                                                             .align_corners(false)
                                                             .antialias(true))
          .squeeze(0);
  const torch::Tensor crop = scaled.narrow(1, (sh - height) / 2, height).narrow(2, (sw - width) / 2, width);
  return crop.round().clamp(0, 255).to(torch::kUInt8);
}

Dataset load_cifar10(const std::string& root, int64_t limit_train, int64_t limit_test) {
  const fs::path dir(root);
  if (!fs::is_directory(dir))
    throw DataError("CIFAR-10 not found: looked in '" + fs::absolute(dir).string() +
                    "' (data.root, or $CIFAR10_ROOT); " + kHowToGet);
  Dataset data;
  data.train = read_cifar_split(
      dir, {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
      limit_train);
  data.test = read_cifar_split(dir, {"test_batch.bin"}, limit_test);
  data.class_names = read_class_names(dir);
  return data;
}

Dataset load_image_folder(const std::string& root, int64_t limit_train, int64_t limit_test) {
  const fs::path dir(root);
  if (!fs::is_directory(dir / "train") || !fs::is_directory(dir / "test"))
    throw DataError("image folder not found: expected '" + fs::absolute(dir).string() +
                    "/train/<class>/*.png|jpg' and '.../test/<class>/...'");
  Dataset data;
  for (const auto& entry : fs::directory_iterator(dir / "train"))
    if (entry.is_directory()) data.class_names.push_back(entry.path().filename().string());
  std::sort(data.class_names.begin(), data.class_names.end());
  if (data.class_names.empty()) throw DataError((dir / "train").string() + ": no class folders");
  std::array<int64_t, 3> shape{0, 0, 0};
  data.train = read_folder_split(dir / "train", data.class_names, limit_train, shape);
  data.test = read_folder_split(dir / "test", data.class_names, limit_test, shape);
  return data;
}

uint64_t data_fingerprint(const Dataset& data) {
  if (data.fingerprint != 0) return data.fingerprint;
  uint64_t hash = 14695981039346656037ull;  // FNV-1a over 8-byte words: ~0.1 s for CIFAR-10
  auto mix = [&hash](const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kCPU).contiguous();
    const auto* bytes = static_cast<const uint8_t*>(c.data_ptr());
    const size_t n = c.numel() * c.element_size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, bytes + i, 8);
      hash = (hash ^ word) * 1099511628211ull;
    }
    for (; i < n; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
    hash = (hash ^ n) * 1099511628211ull;
  };
  for (const ImageSet* set : {&data.train, &data.validation, &data.test}) {
    if (!set->images.defined()) continue;
    mix(set->images);
    mix(set->labels);
  }
  data.fingerprint = hash == 0 ? 1 : hash;
  return data.fingerprint;
}

void hold_out_validation(Dataset& data, int64_t n, int64_t seed) {
  const int64_t total = data.train.size();
  if (n <= 0) return;
  if (n >= total)
    throw DataError("data.validation holds out " + std::to_string(n) + " images but the training split has only " +
                    std::to_string(total));
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  const torch::Tensor order = torch::randperm(total, generator);
  const torch::Tensor held = std::get<0>(order.narrow(0, 0, n).sort());
  const torch::Tensor kept = std::get<0>(order.narrow(0, n, total - n).sort());
  data.validation.images = data.train.images.index_select(0, held);
  data.validation.labels = data.train.labels.index_select(0, held);
  data.train.images = data.train.images.index_select(0, kept);
  data.train.labels = data.train.labels.index_select(0, kept);
  data.fingerprint = 0;
}

Dataset load_dataset(const DataSpec& spec) {
  Dataset data = spec.dataset == "folder" ? load_image_folder(spec.root, spec.limit_train, spec.limit_test)
                                          : load_cifar10(spec.root, spec.limit_train, spec.limit_test);
  hold_out_validation(data, spec.validation, spec.validation_seed);
  return data;
}

BatchTransform::BatchTransform(const DataSpec& data, torch::Device device)
    : steps_(data.augment),
      mean_(torch::tensor({data.mean[0], data.mean[1], data.mean[2]}, torch::kFloat).view({1, 3, 1, 1}).to(device)),
      std_(torch::tensor({data.std[0], data.std[1], data.std[2]}, torch::kFloat).view({1, 3, 1, 1}).to(device)),
      device_(device) {}

torch::Tensor BatchTransform::normalize(const torch::Tensor& images) const {
  return (images.to(device_).to(torch::kFloat).div_(255.0f) - mean_) / std_;
}

torch::Tensor BatchTransform::eval(const torch::Tensor& images) const { return normalize(images); }

bool BatchTransform::alternates() const {
  return std::any_of(steps_.begin(), steps_.end(), [](const AugmentStep& s) { return s.mode == "alternating"; });
}

torch::Tensor BatchTransform::train(const torch::Tensor& images, torch::Generator& generator,
                                    const FlipPhase& phase) const {
  torch::Tensor x = normalize(images);
  for (const auto& step : steps_) {
    if (step.type == "random_crop") {
      x = random_crop(x, step.size, generator);
    } else if (step.type == "horizontal_flip" && step.mode == "alternating") {
      if (!phase.start.defined() || phase.start.size(0) != x.size(0))
        throw std::invalid_argument("horizontal_flip: alternating needs each image's epoch-0 flip");
      // Every image is seen both ways in any two consecutive epochs (airbench's derandomized flip).
      const torch::Tensor flip = phase.epoch % 2 == 0 ? phase.start : phase.start.logical_not();
      x = torch::where(flip.to(device_).view({-1, 1, 1, 1}), x.flip({3}), x);
    } else if (step.type == "horizontal_flip") {
      const torch::Tensor flip = (torch::rand({x.size(0)}, generator) < 0.5).to(device_);
      x = torch::where(flip.view({-1, 1, 1, 1}), x.flip({3}), x);
    } else if (step.type == "cutout") {
      x = cutout(x, step.size, generator);
    }
  }
  return x;
}

torch::Tensor BatchTransform::random_crop(const torch::Tensor& x, int64_t padding, torch::Generator& generator) const {
  if (padding == 0) return x;
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  // Zero padding in normalized space equals padding with the mean colour.
  const torch::Tensor padded = torch::constant_pad_nd(x, {padding, padding, padding, padding}, 0.0);
  const auto options = torch::TensorOptions().device(device_).dtype(torch::kLong);
  const torch::Tensor dy = torch::randint(0, 2 * padding + 1, {n}, generator, torch::kLong).to(device_);
  const torch::Tensor dx = torch::randint(0, 2 * padding + 1, {n}, generator, torch::kLong).to(device_);
  // One gather per axis instead of a per-image slice: rows then columns.
  const torch::Tensor rows = (dy.view({n, 1}) + torch::arange(h, options).view({1, h}));  // [n, h]
  const torch::Tensor cols = (dx.view({n, 1}) + torch::arange(w, options).view({1, w}));  // [n, w]
  const int64_t c = x.size(1), pw = w + 2 * padding;
  torch::Tensor out = padded.gather(2, rows.view({n, 1, h, 1}).expand({n, c, h, pw}));
  return out.gather(3, cols.view({n, 1, 1, w}).expand({n, c, h, w}));
}

torch::Tensor BatchTransform::cutout(const torch::Tensor& x, int64_t size, torch::Generator& generator) const {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const auto options = torch::TensorOptions().device(device_).dtype(torch::kLong);
  const torch::Tensor cy = torch::randint(0, h, {n, 1, 1}, generator, torch::kLong).to(device_);
  const torch::Tensor cx = torch::randint(0, w, {n, 1, 1}, generator, torch::kLong).to(device_);
  const torch::Tensor ys = torch::arange(h, options).view({1, h, 1});
  const torch::Tensor xs = torch::arange(w, options).view({1, 1, w});
  const torch::Tensor inside = ((ys - cy).abs() <= size / 2) & ((xs - cx).abs() <= size / 2) &
                               (ys - cy < size - size / 2) & (xs - cx < size - size / 2);
  return x * (~inside).unsqueeze(1).to(x.dtype());
}

}  // namespace runner
