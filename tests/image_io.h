// Image files for the tests, with the same libraries the runner decodes with
// (libpng's simplified API, TurboJPEG).
#pragma once
#include <png.h>
#include <turbojpeg.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace test_util {

/// An 8-bit RGB image, HWC; empty pixels when the file could not be read.
struct Rgb {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

inline bool write_png(const std::string& path, int width, int height, const uint8_t* rgb) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  return png_image_write_to_file(&image, path.c_str(), 0, rgb, 0, nullptr) != 0;
}

inline bool write_jpeg(const std::string& path, int width, int height, const uint8_t* rgb, int quality) {
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const bool ok = tjCompress2(handle, rgb, width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_444, quality, 0) == 0;
  if (ok)
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(jpeg), static_cast<std::streamsize>(size));
  tjFree(jpeg);
  tjDestroy(handle);
  return ok;
}

inline Rgb read_png(const std::string& path) {
  Rgb out;
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_file(&image, path.c_str()) == 0) return out;
  image.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr) == 0) return out;
  out.width = static_cast<int>(image.width), out.height = static_cast<int>(image.height);
  out.pixels = std::move(pixels);
  return out;
}

}  // namespace test_util
