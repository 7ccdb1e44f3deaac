// Stage 3 data: CIFAR-10 binary batches or an image folder, held whole as one
// uint8 tensor, augmented and normalized per batch.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "runner/config/spec.h"

namespace runner {

/// A split held in memory: images [N, 3, H, W] uint8, labels [N] int64.
struct ImageSet {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.size(0); }
};

struct Dataset {
  ImageSet train;
  ImageSet validation;  ///< held out of train (data.validation); empty when not asked for
  ImageSet test;
  std::vector<std::string> class_names;
  mutable uint64_t fingerprint = 0;  ///< 0 until data_fingerprint() computes it
};

/// Reads the CIFAR-10 binary layout (data_batch_1..5.bin, test_batch.bin,
/// batches.meta.txt). Throws DataError naming the file and the problem.
/// limit_* > 0 keeps the first N records.
Dataset load_cifar10(const std::string& root, int64_t limit_train = 0, int64_t limit_test = 0);

/// Reads root/train/<class>/*.png|jpg and root/test/<class>/... (classes in
/// sorted order); every image must have the same size.
Dataset load_image_folder(const std::string& root, int64_t limit_train = 0, int64_t limit_test = 0);

/// One PNG or JPEG (told apart by signature) as [3, H, W] uint8. DataError naming
/// `label` for anything else, a corrupt image, or one over 4096x4096 pixels.
torch::Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& label);
torch::Tensor read_image(const std::string& path);

/// An image of any size as the model's input size: the shorter side scaled to fit
/// (antialiased bilinear), then the centre cropped; unchanged when it already fits.
torch::Tensor fit_image(const torch::Tensor& chw, int64_t height, int64_t width);

/// A 64-bit hash of every image and label (both splits): tells whether a
/// checkpoint was written on the same data. Cached per Dataset object.
uint64_t data_fingerprint(const Dataset& data);

/// Moves `n` training images, picked by a permutation seeded with `seed`, into
/// data.validation (kept in their original order). Throws DataError when n
/// leaves nothing to train on.
void hold_out_validation(Dataset& data, int64_t n, int64_t seed);

/// Dispatches on data.dataset, then holds out data.validation images.
Dataset load_dataset(const DataSpec& data);

/// Where a batch stands for an alternating flip: whether each of its images is
/// mirrored in epoch 0 (bool [B], on the transform's device), and the epoch.
struct FlipPhase {
  torch::Tensor start;
  int64_t epoch = 0;
};

/// Turns a batch of uint8 images into normalized float input, applying the
/// augmentation steps in order with `generator`.
class BatchTransform {
 public:
  BatchTransform(const DataSpec& data, torch::Device device);
  /// images: [B, C, H, W] uint8 on any device. Returns float on `device`.
  /// `phase` is needed by horizontal_flip: alternating (std::invalid_argument without it).
  torch::Tensor train(const torch::Tensor& images, torch::Generator& generator, const FlipPhase& phase = {}) const;
  /// Whether a step needs a FlipPhase.
  bool alternates() const;
  torch::Tensor eval(const torch::Tensor& images) const;

 private:
  torch::Tensor normalize(const torch::Tensor& images) const;
  torch::Tensor random_crop(const torch::Tensor& x, int64_t padding, torch::Generator& generator) const;
  torch::Tensor cutout(const torch::Tensor& x, int64_t size, torch::Generator& generator) const;

  std::vector<AugmentStep> steps_;
  torch::Tensor mean_, std_;
  torch::Device device_;
};

}  // namespace runner
