// svg_to_png with librsvg (CMake option RUNNER_PNG; render_png_unavailable.cpp without it).
#include <fontconfig/fontconfig.h>
#include <librsvg/rsvg.h>
#include <pango/pangocairo.h>

#include <cmath>

#include "runner/base/errors.h"
#include "runner/report/report.h"

namespace runner {

namespace {
[[noreturn]] void render_failed(GError* error) {
  const std::string why = error ? error->message : "unknown";
  if (error) g_error_free(error);
  throw DataError("cannot render the picture: " + why);
}
}  // namespace

std::vector<unsigned char> svg_to_png(const std::string& svg) {
  GError* error = nullptr;
  RsvgHandle* handle = rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &error);
  if (handle == nullptr) render_failed(error);
  gdouble width = 0, height = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle, &width, &height)) width = 800, height = 600;
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, static_cast<int>(std::ceil(width)),
                                                        static_cast<int>(std::ceil(height)));
  cairo_t* cr = cairo_create(surface);
  const RsvgRectangle viewport{0, 0, width, height};
  const bool ok = rsvg_handle_render_document(handle, cr, &viewport, &error);
  cairo_destroy(cr);
  g_object_unref(handle);
  std::vector<unsigned char> png;
  if (ok)
    cairo_surface_write_to_png_stream(
        surface,
        [](void* closure, const unsigned char* data, unsigned int length) {
          auto* out = static_cast<std::vector<unsigned char>*>(closure);
          out->insert(out->end(), data, data + length);
          return CAIRO_STATUS_SUCCESS;
        },
        &png);
  cairo_surface_destroy(surface);
  // librsvg lays text out with Pango, whose font map keeps fontconfig's patterns
  // for the life of the process; release them (found by make test-asan's leak
  // check). The next picture loads them again.
  pango_cairo_font_map_set_default(nullptr);
  cairo_debug_reset_static_data();
  FcFini();
  if (!ok) render_failed(error);
  return png;
}

}  // namespace runner
