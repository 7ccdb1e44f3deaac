// A run's trained weights, read back from its checkpoint for use outside training
// (runner export, runner predict). The checkpoint's layout is written by the train
// stage (runner/train/checkpoint.cpp): "model", then under train.ema one "ema_<i>"
// per parameter and buffer, in the module's order.
#pragma once
#include <string>

#include "runner/model/builder.h"

namespace runner {

/// Loads into `net` (built from the run's config) the weights its final evaluation
/// used: the averaged copies under train.ema, else the model's own (train.lookahead
/// ends with the average in place). Contiguous (NCHW) and in eval mode afterwards.
/// Returns the number of epochs the checkpoint holds. DataError: the file is
/// missing, unreadable, or holds another model.
int64_t load_eval_weights(Net& net, const std::string& checkpoint, bool ema);

}  // namespace runner
