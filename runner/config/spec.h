// Stage 1 output: the experiment as plain data. No LibTorch here, so the config
// stage (and its tests) never depend on tensors.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "runner/base/errors.h"

namespace runner {

/// A layer option after defaults are applied.
using OptionValue = std::variant<int64_t, double, bool, std::string>;

/// One entry of `model.layers` (or of a residual's `layers`), fully resolved.
struct LayerSpec {
  std::string type;                            ///< registry name, e.g. "conv"
  std::map<std::string, OptionValue> options;  ///< every option of the type, defaults filled
  std::vector<LayerSpec> children;             ///< for containers (residual)
  std::string path;                            ///< "model.layers.3" for messages
  SourceLoc loc;
  std::string via;  ///< inside a block: "in block 'stage' (line 12), used at model.layers.2 (line 40)"

  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
};

struct AugmentStep {
  std::string type;  ///< random_crop | horizontal_flip | cutout
  int64_t size = 0;  ///< padding for random_crop, side for cutout
  /// horizontal_flip only: "random" (each image, each epoch, with probability 1/2) or
  /// "alternating" (each image mirrored on every other epoch, from a random start per image).
  std::string mode = "random";
};

struct DataSpec {
  std::string dataset = "cifar10";  ///< cifar10 | folder
  std::string root;
  std::array<double, 3> mean{0.4914, 0.4822, 0.4465};
  std::array<double, 3> std{0.2470, 0.2435, 0.2616};
  std::vector<AugmentStep> augment;
  int64_t limit_train = 0;  ///< 0 = all
  int64_t limit_test = 0;
  int64_t validation = 0;       ///< training images held out for validation (after limit)
  int64_t validation_seed = 0;  ///< which ones: a permutation fixed by this seed, not by train.seed
};

struct BudgetSpec {
  int64_t max_params = 50000;
  int64_t max_epochs = 20;
  double target_test_acc = 70.0;  ///< percent
};

/// One use of a `model.blocks` entry; its layers are already in ModelSpec::layers,
/// with paths below `path + ".layers"`.
struct BlockUseSpec {
  std::string path;   ///< "model.layers.2.stage"
  std::string block;  ///< "stage"
  std::string args;   ///< "w: 32" as given, defaults included
};

struct ModelSpec {
  std::array<int64_t, 3> input{3, 32, 32};
  int64_t classes = 10;
  std::string norm = "batch";
  int64_t groups = 4;
  std::vector<std::string> block{"conv", "relu", "norm"};
  bool standardize = false;       ///< default of every conv's `standardize` (weight standardization)
  std::vector<LayerSpec> layers;  ///< already expanded: conv blocks become conv, act, norm; block uses their layers
  std::vector<BlockUseSpec> block_uses;  ///< in the order they are read (outer before inner)

  /// The model key a layer option takes its default from (OptionDef::model_default).
  OptionValue default_for(const std::string& key) const {
    if (key == "norm") return norm;
    if (key == "groups") return groups;
    if (key == "standardize") return standardize;
    throw std::logic_error("model." + key + " is no layer option's default (runner/config/spec.h)");
  }
};

/// One class of parameters in train.optimizer.param_groups: its learning rate
/// is the schedule's times lr_scale (0 keeps it at its initial value).
struct ParamGroupSpec {
  double lr_scale = 1.0;
  std::optional<double> weight_decay;  ///< unset: optimizer.weight_decay for weights, 0 for the rest
};

struct OptimizerSpec {
  std::string type = "sgd";  ///< sgd | adam | adamw
  double lr = 0.05;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  /// Keyed by weights | biases | norm_scales | norm_biases; empty: weights
  /// with weight_decay, every other parameter without, all at the schedule's lr.
  std::map<std::string, ParamGroupSpec> param_groups;
};

struct ScheduleSpec {
  std::string type = "onecycle";  ///< constant | step | cosine | onecycle
  double max_lr = 0.1;
  double pct_start = 0.2;
  int64_t step_size = 10;  ///< epochs, for step
  double gamma = 0.1;
};

struct TrainSpec {
  int64_t epochs = 0;
  int64_t batch_size = 128;
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  double label_smoothing = 0.0;
  int64_t seed = 1;
  std::string device = "auto";  ///< auto | cpu | cuda
  int64_t threads = 0;          ///< 0 = all cores
  std::string tta = "none";     ///< none | flip | flip_translate
  /// Memory layout of images and activations: auto (channels_last on the CPU,
  /// nchw on CUDA) | nchw | channels_last. How a run computes, not what: it stays
  /// out of the config hash.
  std::string layout = "auto";
  double ema = 0.0;  ///< decay of the weights' moving average evaluated instead of the weights; 0 = off
  /// Lookahead: every `lookahead_every` steps the weights move to their moving
  /// average (decay lookahead_decay * (step / steps)^3) and the average is copied
  /// back; at the end the weights are the average. 0 = off.
  int64_t lookahead_every = 0;
  double lookahead_decay = 0.0;
};

/// A checked experiment: everything stage 2 and 3 need.
struct ExperimentSpec {
  std::string name;
  std::string description;
  std::string source_file;         ///< where it was read from
  std::vector<std::string> files;  ///< source_file and the files it extends, in order
  std::string yaml;                ///< the effective config (after --set), as YAML text
  DataSpec data;
  BudgetSpec budget;
  ModelSpec model;
  TrainSpec train;
};

}  // namespace runner
