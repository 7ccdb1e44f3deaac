// Stage 1: YAML → ExperimentSpec. Golden error files, defaults, ${VAR}, --set.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <sys/stat.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>

#include "runner/config/config.h"
#include "runner/config/grid.h"
#include "runner/config/plan.h"
#include "runner/config/point_key.h"
#include "runner/config/spec_json.h"
#include "test_util.h"

using namespace runner;
namespace fs = std::filesystem;

namespace {

const char* const kMinimal = R"(name: tiny
model:
  layers:
    - conv: {out: 8}
    - gap
    - conv: {out: 10, kernel: 1, block: false}
train:
  epochs: 2
)";

std::string config_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse_experiment(text, "x.yaml", sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("every bad config in tests/data/bad gives exactly its expected messages") {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(test_util::source_path("tests/data/bad"))) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    const std::string name = entry.path().filename().string();
    const std::string expected = test_util::read_file(fs::path(entry.path()).replace_extension(".expected").string());
    CAPTURE(name);
    std::string got = "(no error)";
    try {
      parse_experiment(test_util::read_file(entry.path().string()), name);
    } catch (const ConfigError& e) {
      got = test_util::without_test_only_layers(e.what()) + "\n";
    }
    CHECK(got == expected);
  }
  CHECK(files >= 50);
}

TEST_CASE(
    "every good config in tests/data/good loads and has the parameter count worked out by hand in its first line") {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(test_util::source_path("tests/data/good"))) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    CAPTURE(entry.path().filename().string());
    const std::string text = test_util::read_file(entry.path().string());
    const size_t at = text.find("# params: ");
    REQUIRE(at != std::string::npos);
    REQUIRE(text.find('\n') > at);  // on the first line
    const ExperimentSpec spec = load_experiment(entry.path().string());
    CHECK(plan_model(spec.model).total_params == std::stoll(text.substr(at + 10)));
  }
  CHECK(files >= 11);
}

TEST_CASE(
    "strict YAML: merge keys resolve (own keys win, clones, not links), anchors work, CRLF and a BOM are accepted") {
  const std::string merged = R"(name: merge-keys
model:
  norm: batch
  layers:
    - conv: &c {out: 16, kernel: 3}
    - conv: {<<: *c, out: 32}
    - conv: {<<: [*c, {padding: 1, out: 99}], out: 24}
    - conv: *c
    - gap
    - conv: {out: 10, kernel: 1, block: false}
train:
  epochs: 2
)";
  const std::string flat = R"(name: merge-keys
model:
  norm: batch
  layers:
    - conv: {out: 16, kernel: 3}
    - conv: {out: 32, kernel: 3}
    - conv: {out: 24, kernel: 3, padding: 1}
    - conv: {out: 16, kernel: 3}
    - gap
    - conv: {out: 10, kernel: 1, block: false}
train:
  epochs: 2
)";
  const ExperimentSpec a = parse_experiment(merged, "merged.yaml"), b = parse_experiment(flat, "flat.yaml");
  CHECK(config_hash(experiment_json(a)) == config_hash(experiment_json(b)));
  CHECK(a.yaml.find("<<") == std::string::npos);  // the recorded YAML is the resolved one
  // --set through a merged layer changes that layer only, not the anchor it merged
  const ExperimentSpec c = parse_experiment(merged, "merged.yaml", {"model.layers.1.conv.kernel=5"});
  std::vector<int64_t> kernels;
  for (const auto& layer : c.model.layers)
    if (layer.type == "conv") kernels.push_back(layer.get_int("kernel"));
  CHECK(kernels == std::vector<int64_t>{3, 5, 3, 3, 1});
  // CRLF line ends and a UTF-8 byte-order mark
  std::string crlf = "\xEF\xBB\xBF";
  for (char ch : flat) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  CHECK(config_hash(experiment_json(parse_experiment(crlf, "crlf.yaml"))) == config_hash(experiment_json(b)));
}

TEST_CASE("strict YAML: a key given twice is an error naming both places, in files and in --set values") {
  const std::string twice = config_error("name: a\nmodel:\n  layers: [gap]\ntrain: {epochs: 2}\nname: b\n");
  CHECK(twice.find("x.yaml:5:1: key 'name': given twice in one map (first at line 1, column 1)") != std::string::npos);
  const std::string in_set = config_error(kMinimal, {"train.optimizer={lr: 0.1, lr: 0.2}"});
  CHECK(in_set.find("--set train.optimizer={lr: 0.1, lr: 0.2}: key 'train.optimizer.lr': given twice in one map") !=
        std::string::npos);
  // a grid or search file too
  test_util::TempDir tmp;
  std::ofstream(tmp / "g.yaml") << "base: x.yaml\ngrid:\n  train.optimizer.lr: [0.1]\n  train.optimizer.lr: [0.2]\n";
  try {
    load_grid(tmp / "g.yaml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(
              "g.yaml:4:3: key 'grid.train.optimizer.lr': given twice in one map (first at line 3, "
              "column 3)") != std::string::npos);
  }
  // the merge key itself twice is a duplicate too
  CHECK(config_error("name: a\nmodel: {<<: {norm: batch}, <<: {norm: group}, layers: [gap]}\ntrain: {epochs: 2}\n")
            .find("key 'model.<<': given twice") != std::string::npos);
}

TEST_CASE("extends: maps merge, lists and scalars replace, chains work, and the hash is the flat file's") {
  test_util::TempDir tmp;
  fs::create_directories(tmp / "sub");
  std::ofstream(tmp / "base.yaml") << "name: base\nmodel:\n  norm: batch\n  layers:\n    - conv: {out: 8}\n    - gap\n"
                                      "    - conv: {out: 10, kernel: 1, block: false}\ntrain:\n  epochs: 2\n"
                                      "  optimizer: {lr: 0.1, momentum: 0.8}\n";
  std::ofstream(tmp / "mid.yaml")
      << "extends: base.yaml\nmodel:\n  norm: group\n  groups: 2\ntrain:\n  optimizer: {lr: 0.2}\n";
  std::ofstream(tmp / "sub/child.yaml")
      << "extends: ../mid.yaml\nname: child\nmodel:\n  layers:\n    - conv: {out: 4}\n"
         "    - gap\n    - conv: {out: 10, kernel: 1, block: false}\n";
  const std::string flat =
      "name: child\nmodel:\n  norm: group\n  groups: 2\n  layers:\n    - conv: {out: 4}\n    - gap\n"
      "    - conv: {out: 10, kernel: 1, block: false}\ntrain:\n  epochs: 2\n"
      "  optimizer: {lr: 0.2, momentum: 0.8}\n";
  const ExperimentSpec child = load_experiment(tmp / "sub/child.yaml");
  CHECK(config_hash(experiment_json(child)) == config_hash(experiment_json(parse_experiment(flat, "flat.yaml"))));
  CHECK(child.files == std::vector<std::string>{tmp / "sub/child.yaml", tmp / "mid.yaml", tmp / "base.yaml"});
  CHECK(child.yaml.find("extends") == std::string::npos);         // the recorded YAML is the resolved experiment
  CHECK(child.train.optimizer.momentum == doctest::Approx(0.8));  // a map merged key by key
  CHECK(child.model.layers.front().get_int("out") == 4);          // a list replaced
}

TEST_CASE("extends: an error points into the file that wrote the value, a cycle or a missing parent names the chain") {
  test_util::TempDir tmp;
  std::ofstream(tmp / "base.yaml") << "name: base\nmodel:\n  layers:\n    - conv: {out: 8, kernal: 3}\n    - gap\n"
                                      "    - conv: {out: 10, kernel: 1, block: false}\ntrain:\n  epochs: 2\n"
                                      "  optimiser: {lr: 0.1}\n";
  std::ofstream(tmp / "child.yaml") << "extends: base.yaml\nname: child\ntrain:\n  epochs: 3\n  batch_size: -4\n";
  std::string message;
  try {
    load_experiment(tmp / "child.yaml");
  } catch (const ConfigError& e) {
    message = e.what();
  }
  CAPTURE(message);
  CHECK(message.find(tmp / "base.yaml" + ":4:22: key 'model.layers.0.conv.kernal': unknown key") != std::string::npos);
  CHECK(message.find(tmp / "base.yaml" + ":9:3: key 'train.optimiser': unknown key") != std::string::npos);
  CHECK(message.find(tmp / "child.yaml" + ":5:15: key 'train.batch_size'") != std::string::npos);
  // three files: a grandparent's value, inherited through a map the middle file also writes
  std::ofstream(tmp / "mid.yaml") << "extends: base.yaml\nname: mid\nmodel:\n  norm: group\n";
  std::ofstream(tmp / "leaf.yaml") << "extends: mid.yaml\nname: leaf\nmodel:\n  groups: 2\n";
  try {
    load_experiment(tmp / "leaf.yaml");
  } catch (const ConfigError& e) {
    message = e.what();
  }
  CHECK(message.find(tmp / "base.yaml" + ":4:22: key 'model.layers.0.conv.kernal'") != std::string::npos);
  // a cycle, and a parent that is not there
  std::ofstream(tmp / "a.yaml") << "extends: b.yaml\nname: a\n";
  std::ofstream(tmp / "b.yaml") << "extends: a.yaml\nname: b\n";
  std::ofstream(tmp / "c.yaml") << "extends: a.yaml\n";
  try {
    load_experiment(tmp / "c.yaml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("key 'extends': extends itself through " + tmp / "c.yaml" + " → " +
                                     tmp / "a.yaml" + " → " + tmp / "b.yaml" + " → " + tmp / "a.yaml") !=
          std::string::npos);
  }
  std::ofstream(tmp / "d.yaml") << "name: d\nextends: nowhere.yaml\n";
  try {
    load_experiment(tmp / "d.yaml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(tmp / "d.yaml" + ":2:10: key 'extends': cannot open " + tmp / "nowhere.yaml") !=
          std::string::npos);
  }
}

TEST_CASE("the experiments written with extends and blocks are the configs their recorded runs trained") {
  // docs/results/best.db holds seed-1 runs of each; config_hash leaves out the name, data root and threads.
  test_util::TempDir tmp;  // a copy: reading a WAL database leaves -shm and -wal files beside it
  fs::copy_file(test_util::source_path("docs/results/best.db"), tmp / "best.db");
  SQLite::Database db(tmp / "best.db");
  for (const auto& [file, run] : std::vector<std::pair<std::string, std::string>>{
           {"experiments/ablation/techniques.yaml",
            "best-batch-s1"},  // blocks: the first best BN network at its defaults
           {"experiments/ablation/best_full.yaml", "best2-batch-s1"},  // extends it with the searched parameters
           {"experiments/ablation/separable.yaml", "best4-bn-s1"},     // and that with separable residual convs
           {"experiments/ablation/bn_crop3.yaml", "best6-bn-s1"},      // and that with lighter crops
           {"experiments/best/bn.yaml", "best10-bn-s1"},               // and lighter still
           {"experiments/session8/ln.yaml", "session8-layer-s1"},
           {"experiments/session8/gn.yaml", "session8-group-s1"},
           {"experiments/ablation/ln_full.yaml", "best2-ws-layer-s1"},  // best_full.yaml, LayerNorm, standardized
           {"experiments/ablation/ln_crop3.yaml", "best8-ln-s1"},       // and that with lighter crops
           {"experiments/ablation/ln_sep_crop2.yaml", "best11-ln-s1"},  // best/gn.yaml with LayerNorm
           {"experiments/best/ln.yaml", "best12-ln-s1"},                // and that with LN's searched recipe
           {"experiments/ablation/gn_full.yaml", "best3-gn-2-s1"},      // ln_full.yaml with GroupNorm in 2 groups
           {"experiments/ablation/gn_separable.yaml", "best5-gn-s1"},   // separable.yaml with GroupNorm in 2 groups
           {"experiments/ablation/gn_crop3.yaml", "best7-gn-s1"},       // and that with lighter crops
           {"experiments/best/gn.yaml", "best9-gn-s1"}}) {              // and lighter still
    CAPTURE(file);
    SQLite::Statement q(db, "SELECT config_hash FROM runs WHERE name = ? LIMIT 1");
    q.bind(1, run);
    REQUIRE(q.executeStep());
    const ExperimentSpec spec = load_experiment(test_util::source_path(file), {"train.seed=1"});
    CHECK((spec.files.size() >= 2 || !spec.model.block_uses.empty()));
    CHECK(config_hash(experiment_json(spec)) == q.getColumn(0).getString());
  }
  // best/ln.yaml's recipe is the winner of LN's halving search, the point its last rung trained on validation.
  fs::copy_file(test_util::source_path("docs/results/ablation.db"), tmp / "ablation.db");
  SQLite::Database ablation(tmp / "ablation.db");
  SQLite::Statement q(ablation, "SELECT config_hash FROM runs WHERE name = 'best-ln-sep-search-4-r2'");
  REQUIRE(q.executeStep());
  const ExperimentSpec spec =
      load_experiment(test_util::source_path("experiments/best/ln.yaml"), {"train.seed=1", "data.validation=5000"});
  CHECK(config_hash(experiment_json(spec)) == q.getColumn(0).getString());
}

namespace {
// A block with a required width, a default kernel and an activation chosen by name, used
// directly, through another block, and inside a residual.
const char* const kBlocks = R"(name: blocks
model:
  blocks:
    unit:
      params: {c: ~, k: 3, act: relu}
      layers:
        - conv: {out: $c, kernel: $k, padding: 1, block: false}
        - norm
        - $act
    pair:
      params: [c]
      layers:
        - unit: {c: $c}
        - residual:
            - unit: {c: $c, act: gelu}
  layers:
    - unit: 8
    - pair: {c: 16}
    - gap
    - linear: 10
train:
  epochs: 1
)";
const char* const kBlocksFlat = R"(name: flat
model:
  layers:
    - conv: {out: 8, kernel: 3, padding: 1, block: false}
    - norm
    - relu
    - conv: {out: 16, kernel: 3, padding: 1, block: false}
    - norm
    - relu
    - residual:
        - conv: {out: 16, kernel: 3, padding: 1, block: false}
        - norm
        - gelu
    - gap
    - linear: 10
train:
  epochs: 1
)";
}  // namespace

TEST_CASE("blocks: uses expand to the block's layers with the arguments, and the hash is the flat file's") {
  const ExperimentSpec spec = parse_experiment(kBlocks, "x.yaml");
  CHECK(config_hash(experiment_json(spec)) == config_hash(experiment_json(parse_experiment(kBlocksFlat, "flat.yaml"))));
  REQUIRE(spec.model.layers.size() == 9);
  CHECK(spec.model.layers[3].get_int("out") == 16);
  CHECK(spec.model.layers[6].children.back().type == "gelu");
  CHECK(spec.model.layers[0].path == "model.layers.0.unit.layers.0.conv");
  CHECK(spec.model.layers[0].loc.line == 7);  // where the definition writes it
  CHECK(spec.model.layers[0].via == "in block 'unit' (line 4), used at model.layers.0 (line 17)");
  std::vector<std::string> uses;
  for (const auto& use : spec.model.block_uses) uses.push_back(use.path + " " + use.block + " {" + use.args + "}");
  CHECK(uses ==
        std::vector<std::string>{"model.layers.0.unit unit {c: 8, k: 3, act: relu}", "model.layers.1.pair pair {c: 16}",
                                 "model.layers.1.pair.layers.0.unit unit {c: 16, k: 3, act: relu}",
                                 "model.layers.1.pair.layers.1.residual.layers.0.unit unit {c: 16, k: 3, act: gelu}"});
  // --set reaches a use's argument and the definition alike
  CHECK(parse_experiment(kBlocks, "x.yaml", {"model.layers.1.pair.c=24"}).model.layers[3].get_int("out") == 24);
  CHECK(parse_experiment(kBlocks, "x.yaml", {"model.blocks.unit.params.act=tanh"}).model.layers[2].type == "tanh");
  // docs/dsl.md's depthwise-separable block: 16·9 + 16·32 weights, plus the pointwise conv's norm
  const ExperimentSpec separable = parse_experiment(R"(name: sep
model:
  blocks:
    separable:
      params: [c_in, c_out]
      layers:
        - conv: {out: $c_in, kernel: 3, padding: 1, groups: $c_in, block: false}
        - conv: {out: $c_out, kernel: 1}
  layers:
    - conv: {out: 16, padding: 1}
    - separable: {c_in: 16, c_out: 32}
    - gap
    - linear: 10
train:
  epochs: 1
)",
                                                    "sep.yaml");
  CHECK(separable.model.layers[3].get_int("groups") == 16);
  CHECK(plan_model(separable.model).total_params == 432 + 32 + 144 + 512 + 64 + 330);
  // a block defined in a parent file, used in the child
  test_util::TempDir tmp;
  std::ofstream(tmp / "base.yaml") << kBlocks;
  std::ofstream(tmp / "child.yaml") << "extends: base.yaml\nname: child\nmodel:\n  layers:\n    - unit: {c: 4, k: 0}\n"
                                       "    - gap\n    - linear: 10\n";
  try {
    load_experiment(tmp / "child.yaml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == tmp / "child.yaml" +
                                       ":5:23: key 'model.layers.0.unit.k': must be greater than 0, got 0 "
                                       "(k of block 'unit', which uses it at " +
                                       tmp / "base.yaml" + " line 7)");
  }
}

TEST_CASE("blocks: an error names the use and the definition, once per place") {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = kBlocks;
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return config_error(text.replace(at, from.size(), to));
  };
  // a $name the block does not have: at the definition, naming the first use (not repeated for the others)
  CHECK(with("out: $c, kernel", "out: $cc, kernel") ==
        "x.yaml:7:23: key 'model.layers.0.unit.layers.0.conv.out': '$cc' is not a parameter of block 'unit' (did you "
        "mean "
        "'$c'?) (in block 'unit' (line 4), used at model.layers.0 (line 17))");
  // a bad argument: where it was written, naming where the block uses it
  CHECK(with("- unit: 8", "- unit: -8") ==
        "x.yaml:17:13: key 'model.layers.0.unit': must be greater than 0, got -8 "
        "(c of block 'unit', which uses it at line 7)");
  const std::string type_from_param =
      with("- $act", "- $act\n        - $k");  // a type named by an argument: at the argument
  CAPTURE(type_from_param);
  CHECK(type_from_param.find("x.yaml:5:25: key 'model.blocks.unit.params.k': unknown layer type '3'; known types: ") ==
        0);
  CHECK(type_from_param.find("; blocks: pair, unit (k of block 'unit', which uses it at line 10)") !=
        std::string::npos);
  CHECK(with("- pair: {c: 16}", "- pair: {c: 16, w: 2}") ==
        "x.yaml:18:21: key 'model.layers.1.pair.w': unknown key; valid keys here: c");
  CHECK(with("- pair: {c: 16}", "- pair") ==
        "x.yaml:18:7: key 'model.layers.1.pair.c': missing parameter of block 'pair' defined at line 10");
  CHECK(with("- pair: {c: 16}", "- pair: {c: [16]}") ==
        "x.yaml:18:17: key 'model.layers.1.pair.c': a block parameter is a single value (a number, a name, true or "
        "false)");
  CHECK(with("- unit: 8", "- pair: 8\n    - unit: {c: 8, act: tanh, k: 1}").find("(no error)") != std::string::npos);
  CHECK(with("- unit: 8", "- unitt: 8").find("unknown layer type 'unitt' (did you mean 'unit'?)") != std::string::npos);
  CHECK(
      with("        - unit: {c: $c}", "        - pair: {c: $c}") ==
      "x.yaml:13:11: key 'model.layers.1.pair.layers.0.pair': block 'pair' uses itself (pair → pair); a block may use "
      "other blocks, not itself (in block 'pair' (line 10), used at model.layers.1 (line 18))");
  CHECK(with("    unit:\n", "    conv:\n")
            .find("x.yaml:4:5: key 'model.blocks.conv': 'conv' is a layer type; give the block a name of its own") ==
        0);
  CHECK(with("params: [c]", "params: [c, layers]") ==
        "x.yaml:11:19: key 'model.blocks.pair.params.layers': 'layers' is taken by the block's own layers; name the "
        "parameter otherwise");
  CHECK(with("params: [c]", "params: {c: [1]}") ==
        "x.yaml:11:19: key 'model.blocks.pair.params.c': a default is a single plain value (a number, a name, true or "
        "false), or ~ for none");
  // blocks that use each other twice over (2^20 uses): a bounded error, not a hang
  std::string doubling = "name: d\nmodel:\n  blocks:\n    b0: {layers: [relu]}\n";
  for (int i = 1; i <= 20; ++i)
    doubling +=
        "    b" + std::to_string(i) + ": {layers: [b" + std::to_string(i - 1) + ", b" + std::to_string(i - 1) + "]}\n";
  doubling += "  layers: [b20, gap, {linear: 10}]\ntrain: {epochs: 1}\n";
  CHECK(config_error(doubling).find("the blocks expand to more than 4096 uses") != std::string::npos);
  // a shape problem inside a block: the definition's line, the use's path and line
  CHECK(
      with("- pair: {c: 16}", "- pair: {c: 16}\n    - linear: 5\n    - pair: {c: 4}") ==
      "x.yaml:7:11: key 'model.layers.3.pair.layers.0.unit.layers.0.conv': conv needs a [C, H, W] feature map but gets "
      "[-1, 5] (a linear layer already flattened it) (after model.layers.2.linear at line 19, whose output is [-1, "
      "5]); "
      "in block 'unit' (line 4), used at model.layers.3.pair.layers.0 (line 13)");
}

TEST_CASE("all problems of a file are reported together, in file order") {
  const std::string message = test_util::read_file(test_util::source_path("tests/data/bad/wrong_type.expected"));
  CHECK(std::count(message.begin(), message.end(), '\n') == 7);
}

TEST_CASE("defaults match docs/dsl.md") {
  const ExperimentSpec spec = parse_experiment(kMinimal, "x.yaml");
  CHECK(spec.name == "tiny");
  CHECK(spec.data.dataset == "cifar10");
  CHECK(spec.data.mean[0] == doctest::Approx(0.4914));
  CHECK(spec.data.std[2] == doctest::Approx(0.2616));
  CHECK(spec.data.augment.empty());
  CHECK(spec.budget.max_params == 50000);
  CHECK(spec.budget.max_epochs == 20);
  CHECK(spec.budget.target_test_acc == doctest::Approx(70));
  CHECK(spec.model.input == std::array<int64_t, 3>{3, 32, 32});
  CHECK(spec.model.classes == 10);
  CHECK(spec.model.norm == "batch");
  CHECK(spec.model.groups == 4);
  CHECK(spec.train.batch_size == 128);
  CHECK(spec.train.optimizer.type == "sgd");
  CHECK(spec.train.optimizer.lr == doctest::Approx(0.05));
  CHECK(spec.train.optimizer.momentum == doctest::Approx(0.9));
  CHECK(spec.train.schedule.type == "onecycle");
  CHECK(spec.train.schedule.max_lr == doctest::Approx(0.1));
  CHECK(spec.train.seed == 1);
  CHECK(spec.train.device == "auto");
  CHECK(spec.train.threads == 0);
  CHECK(spec.train.tta == "none");
}

TEST_CASE("a conv expands into model.block unless block: false") {
  const ExperimentSpec spec = parse_experiment(kMinimal, "x.yaml");
  std::vector<std::string> types;
  for (const auto& layer : spec.model.layers) types.push_back(layer.type);
  CHECK(types == std::vector<std::string>{"conv", "relu", "norm", "gap", "conv"});
  CHECK(spec.model.layers[2].get_string("type") == "batch");

  const ExperimentSpec custom =
      parse_experiment(kMinimal, "x.yaml", {"model.block=[conv, norm, gelu]", "model.norm=group"});
  CHECK(custom.model.layers[1].type == "norm");
  CHECK(custom.model.layers[1].get_string("type") == "group");
  CHECK(custom.model.layers[2].type == "gelu");

  const ExperimentSpec per_layer = parse_experiment(kMinimal, "x.yaml", {"model.layers.0.conv.norm=layer"});
  CHECK(per_layer.model.layers[2].get_string("type") == "layer");
}

TEST_CASE("shorthand forms: bare names, scalars and lists") {
  const ExperimentSpec spec = parse_experiment(R"(name: short
model:
  layers:
    - conv: {out: 8, padding: 1, block: false}
    - maxpool: 2
    - dropout: 0.05
    - residual:
        - conv: {out: 8, padding: 1}
    - gap
    - linear: 10
train: {epochs: 1}
)",
                                               "x.yaml");
  CHECK(spec.model.layers[1].get_int("kernel") == 2);
  CHECK(spec.model.layers[2].get_double("p") == doctest::Approx(0.05));
  CHECK(spec.model.layers[3].children.size() == 3);
  CHECK(spec.model.layers[5].get_int("out") == 10);
}

TEST_CASE("${VAR} and ${VAR:-default} expand in strings") {
  ::unsetenv("RUNNER_TEST_ROOT");
  const char* cifar_root = std::getenv("CIFAR10_ROOT");
  CHECK(parse_experiment(kMinimal, "x.yaml").data.root ==
        (cifar_root != nullptr && *cifar_root ? cifar_root : "data/cifar-10-batches-bin"));
  CHECK(parse_experiment(kMinimal, "x.yaml", {"data.root=${RUNNER_TEST_ROOT:-/fallback}"}).data.root == "/fallback");
  ::setenv("RUNNER_TEST_ROOT", "/from/env", 1);
  CHECK(parse_experiment(kMinimal, "x.yaml", {"data.root=${RUNNER_TEST_ROOT}/x"}).data.root == "/from/env/x");
  ::unsetenv("RUNNER_TEST_ROOT");
  CHECK(config_error(kMinimal, {"data.root=${RUNNER_TEST_ROOT}"}).find("RUNNER_TEST_ROOT is not set") !=
        std::string::npos);
}

TEST_CASE("--set overrides are applied and checked like the file") {
  const ExperimentSpec spec =
      parse_experiment(kMinimal, "x.yaml", {"train.epochs=5", "model.layers.0.conv.out=12", "train.optimizer.lr=0.2"});
  CHECK(spec.train.epochs == 5);
  CHECK(spec.model.layers[0].get_int("out") == 12);
  CHECK(spec.train.optimizer.lr == doctest::Approx(0.2));
  CHECK(spec.yaml.find("out: 12") != std::string::npos);

  CHECK(config_error(kMinimal, {"train.epochs=many"}) ==
        "--set train.epochs=many: key 'train.epochs': must be an integer, got 'many'");
  CHECK(config_error(kMinimal, {"train.epohcs=3"}) ==
        "--set train.epohcs=3: key 'train.epohcs': unknown key (did you mean 'epochs'?)");
  CHECK(config_error(kMinimal, {"model.layers.9.conv.out=3"}).find("is not an index of that list (0..2)") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"no-equals-sign"}).find("expected key.path=value") != std::string::npos);
}

TEST_CASE("train.epochs over budget.max_epochs is a budget refusal") {
  CHECK_THROWS_AS(parse_experiment(kMinimal, "x.yaml", {"train.epochs=21"}), BudgetError);
  CHECK_NOTHROW(parse_experiment(kMinimal, "x.yaml", {"train.epochs=30", "budget.max_epochs=30"}));
}

TEST_CASE("a missing experiment file is a config error naming the file") {
  try {
    load_experiment("/nonexistent/exp.yaml");
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/exp.yaml") == 0);
  }
}

// ---- grid files ----

namespace {
std::string write_grid(const test_util::TempDir& tmp, const std::string& text) {
  const std::string path = tmp / "grid.yaml";
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("a grid expands to the cartesian product times the seeds, with names from the template") {
  test_util::TempDir tmp;
  const std::string base = test_util::source_path("experiments/session8/bn.yaml");
  const GridSpec grid = load_grid(write_grid(tmp, "base: " + base + R"(
grid:
  model.norm: [batch, layer, group]
  train.optimizer.lr: [0.02, 0.05]
seeds: [1, 2]
name: "norm-{model.norm}-lr{train.optimizer.lr}-s{seed}"
)"));
  CHECK(grid.sweep == "grid");
  const auto points = expand_grid(grid, "base", 7);
  REQUIRE(points.size() == 12);
  CHECK(points[0].key.text() == "model.norm=batch train.optimizer.lr=0.02 seed=1");
  CHECK(points[0].name == "norm-batch-lr0.02-s1");
  CHECK(points[1].key.text() == "model.norm=batch train.optimizer.lr=0.02 seed=2");
  CHECK(points[11].name == "norm-group-lr0.05-s2");
  CHECK(points[11].sets == std::vector<std::string>{"model.norm=group", "train.optimizer.lr=0.05", "train.seed=2",
                                                    "name=norm-group-lr0.05-s2"});
  // each point is a valid experiment
  const ExperimentSpec spec = load_experiment(grid.base, points[7].sets);
  CHECK(spec.model.norm == "layer");
  CHECK(spec.train.optimizer.lr == doctest::Approx(0.05));
  CHECK(spec.train.seed == 2);

  const GridSpec plain = load_grid(write_grid(tmp, "base: " + base + "\ngrid: {model.layers.0.conv.out: [8, 16]}\n"));
  const auto two = expand_grid(plain, "session8-bn", 7);
  CHECK(two.size() == 2);
  CHECK(two[1].name == "session8-bn-p1");
  CHECK(two[1].key.text() == "model.layers.0.conv.out=16 seed=7");
}

TEST_CASE("a point key formats and parses back: sampled values, values with spaces, seed and rung") {
  PointKey key;
  key.sample = 3;
  key.values = {{"train.optimizer.lr", "0.0125"}, {"model.block", "[conv, relu, norm]"}, {"x_1.y", ""}};
  key.seed = 2;
  const std::string text = "sample=3 train.optimizer.lr=0.0125 model.block=[conv, relu, norm] x_1.y= seed=2";
  CHECK(key.text() == text);
  const auto back = PointKey::parse(text);
  REQUIRE(back.has_value());
  CHECK(*back == key);
  CHECK(back->value("model.block") == "[conv, relu, norm]");
  CHECK(back->value("model.norm").empty());
  CHECK(key.with_rung(2).text() == text + " rung=2");
  CHECK(PointKey::parse(text + " rung=2")->rung == 2);
  CHECK(*PointKey::parse(text + " rung=2") != key);
  CHECK(PointKey::parse(text + " rung=2")->without_rung() == key);
  CHECK(PointKey::parse("seed=1")->values.empty());
  for (const std::string bad :
       {"", "model.norm=batch", "seed=x", "seed=1 model.norm=batch", "sample=-1 seed=1", "norm"}) {
    INFO(bad);
    CHECK_FALSE(PointKey::parse(bad).has_value());
  }
}

TEST_CASE("grid file errors name file:line:col and the key") {
  test_util::TempDir tmp;
  const std::string message = test_util::error_of<ConfigError>([&] {
    load_grid(write_grid(tmp, R"(base: nowhere.yaml
grids: {}
seeds: [1, x]
name: "{model.nrom}"
)"));
  });
  CHECK(message.find("grid.yaml:1:7: key 'base': no experiment file at") != std::string::npos);
  CHECK(message.find("grid.yaml:2:1: key 'grids': unknown key (did you mean 'grid'?)") != std::string::npos);
  CHECK(message.find("key 'grid': missing required key") != std::string::npos);
  CHECK(message.find("grid.yaml:3:12: key 'seeds.1': must be an integer, got 'x'") != std::string::npos);
  CHECK(message.find("grid.yaml:4:7: key 'name': '{model.nrom}' is not a grid key") != std::string::npos);
}

TEST_CASE("every experiment, grid and search file under experiments/ checks, and every point fits its budget") {
  int files = 0, points = 0;
  for (const auto& entry : fs::recursive_directory_iterator(test_util::source_path("experiments"))) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string path = entry.path().string();
    INFO(path);
    const std::string text = test_util::read_file(path);
    std::vector<std::vector<std::string>> sets;
    std::string experiment = path;
    if (text.rfind("base:", 0) == 0 || text.find("\nbase:") != std::string::npos) {
      const GridSpec grid = load_grid(path);
      const ExperimentSpec base = load_experiment(grid.base);
      for (const auto& point : expand_grid(grid, base.name, base.train.seed)) sets.push_back(point.sets);
      experiment = grid.base;
    } else {
      sets.push_back({});
    }
    for (const auto& set : sets) {
      const ExperimentSpec spec = load_experiment(experiment, set);
      CHECK_NOTHROW(check_param_budget(plan_model(spec.model), spec.budget));
      ++points;
    }
    ++files;
  }
  CHECK(files >= 20);
  CHECK(points > files);
}

// ---- search files (a grid file that samples) ----

#include <boost/random/mersenne_twister.hpp>
#include <boost/random/sobol.hpp>
#include <cmath>

TEST_CASE("search: the same file draws the same points, Sobol draws are Boost's sequence, random ones mt19937_64's") {
  test_util::TempDir tmp;
  const std::string base = test_util::source_path("experiments/session8/bn.yaml");
  const std::string text = "base: " + base + R"(
search:
  method: sobol
  samples: 16
  seed: 3
  space:
    train.optimizer.lr: {log_uniform: [0.02, 0.4]}
    train.label_smoothing: {uniform: [0.0, 0.3]}
    model.layers.0.conv.out: {int: [12, 24], step: 4}
    model.norm: [batch, group]
seeds: [1, 2]
name: "s-{model.norm}-{index}"
)";
  const GridSpec grid = load_grid(write_grid(tmp, text));
  CHECK(grid.sampled());
  REQUIRE(grid.search.space.size() == 4);
  const auto draws = search_draws(grid.search);
  REQUIRE(draws.size() == 16);
  boost::random::sobol sobol(4);
  sobol.seed(3);
  for (const auto& row : draws)
    for (double u : row) CHECK(u == std::ldexp(static_cast<double>(sobol() - (sobol.min)()), -64));
  const auto points = expand_grid(grid, "b", 1);
  REQUIRE(points.size() == 32);                                              // 16 samples x 2 seeds
  const auto again = expand_grid(load_grid(write_grid(tmp, text)), "b", 1);  // the same file, the same points
  for (size_t i = 0; i < points.size(); ++i) {
    CHECK(points[i].key == again[i].key);
    CHECK(points[i].sets == again[i].sets);
  }
  std::set<std::string> norms, widths;
  for (const auto& p : points) {
    const ExperimentSpec spec = load_experiment(grid.base, p.sets);  // each a valid experiment
    CHECK(spec.train.optimizer.lr >= 0.02);
    CHECK(spec.train.optimizer.lr < 0.4);
    CHECK(spec.train.label_smoothing >= 0.0);
    CHECK(spec.train.label_smoothing < 0.3);
    const int64_t width = spec.model.layers[0].get_int("out");
    CHECK(width >= 12);
    CHECK(width <= 24);
    CHECK(width % 4 == 0);
    widths.insert(std::to_string(width));
    norms.insert(spec.model.norm);
  }
  CHECK(widths == std::set<std::string>{"12", "16", "20", "24"});  // every step reached
  CHECK(norms == std::set<std::string>{"batch", "group"});
  CHECK(points[0].key.text().rfind("sample=0 train.optimizer.lr=", 0) == 0);
  CHECK(points[2].key.text().rfind("sample=1 train.optimizer.lr=", 0) == 0);
  CHECK(points[1].key.text().substr(points[1].key.text().size() - 6) == "seed=2");
  CHECK(points[0].key.text().find(points[0].sets[0] + " ") != std::string::npos);  // the key says what is set

  // random: mt19937_64(seed), 53 bits a draw; another seed draws other points
  std::string random_text = text;
  random_text.replace(random_text.find("method: sobol"), 13, "method: random");
  GridSpec random = load_grid(write_grid(tmp, random_text));
  boost::random::mt19937_64 mt(3);
  for (const auto& row : search_draws(random.search))
    for (double u : row) CHECK(u == std::ldexp(static_cast<double>(mt() >> 11), -53));
  random.search.seed = 4;
  CHECK(expand_grid(random, "b", 1)[0].key != expand_grid(load_grid(write_grid(tmp, random_text)), "b", 1)[0].key);

  // distributions at the edges of [0, 1)
  Distribution d;
  d.kind = Distribution::Kind::Int, d.low = 12, d.high = 24, d.step = 5;  // 12, 17, 22
  CHECK(d.value_at(0.0) == "12");
  CHECK(d.value_at(0.999999) == "22");
  d.kind = Distribution::Kind::LogUniform, d.low = 0.01, d.high = 1;
  CHECK(d.value_at(0.5) == "0.1");
}

TEST_CASE("search and halving errors name file:line:col and the key") {
  test_util::TempDir tmp;
  const std::string base = test_util::source_path("experiments/session8/bn.yaml");
  const std::string message = test_util::error_of<ConfigError>([&] {
    load_grid(write_grid(tmp, "base: " + base + R"(
search:
  method: sobol
  samples: 8
  space:
    train.optimizer.lr: {log_uniform: [0.0, 0.4]}
    train.label_smoothing: {uniform: [0.3, 0.1]}
    train.batch_size: {gauss: [64, 128]}
    model.layers.0.conv.out: {uniform: [8, 16], step: 4}
    model.norm: []
halving: {metric: val_loss, min_epochs: 4, eta: 1, max_epochs: 2}
)"));
  });
  CAPTURE(message);
  CHECK(message.find("grid.yaml:6:39: key 'search.space.train.optimizer.lr.log_uniform': log_uniform needs positive "
                     "bounds") != std::string::npos);
  CHECK(message.find("grid.yaml:7:38: key 'search.space.train.label_smoothing.uniform': low must be below high, got "
                     "[0.3, 0.1]") != std::string::npos);
  CHECK(message.find("grid.yaml:8:24: key 'search.space.train.batch_size.gauss': unknown distribution 'gauss'") !=
        std::string::npos);
  CHECK(message.find("key 'search.space.model.layers.0.conv.out.step': step applies to int only") != std::string::npos);
  CHECK(message.find("grid.yaml:10:17: key 'search.space.model.norm': a categorical list needs at least one value") !=
        std::string::npos);
  CHECK(message.find("key 'halving.metric'") != std::string::npos);
  CHECK(message.find("val_loss") != std::string::npos);
  CHECK(message.find("key 'halving.eta': eta must be at least 2") != std::string::npos);
  CHECK(message.find("key 'halving.max_epochs': max_epochs must be at least min_epochs (4)") != std::string::npos);

  const std::string grid_method = test_util::error_of<ConfigError>(
      [&] { load_grid(write_grid(tmp, "base: " + base + "\nsearch: {samples: 4}\ngrid: {model.norm: [batch]}\n")); });
  CHECK(grid_method.find("key 'search.method': samples and space need method: random or sobol") != std::string::npos);
}

// Inputs the fuzzer (fuzz/fuzz_config) found; each is also in fuzz/corpus/config/regress_*.
TEST_CASE("fuzzer findings: huge grids, self-referencing names and overlong base paths are config errors") {
  test_util::TempDir tmp;
  const std::string base = test_util::source_path("experiments/session8/bn.yaml");
  // 8 axes x 5 values x 3 seeds = 1,171,875 points: used to be expanded (minutes, GBs).
  std::string axes;
  for (int a = 0; a < 8; ++a) axes += "  model.layers." + std::to_string(a) + ".conv.out: [8, 9, 10, 11, 12]\n";
  const std::string huge = test_util::error_of<ConfigError>(
      [&] { load_grid(write_grid(tmp, "base: " + base + "\ngrid:\n" + axes + "seeds: [1, 2, 3]\n")); });
  CHECK(huge.find("grid.yaml:3:3: key 'grid': the grid has 1171875 points (3 seeds x 5 model.layers.0.conv.out") !=
        std::string::npos);
  CHECK(huge.find("at most 10000 ") != std::string::npos);

  // A value that contains "{key}" used to make the name template loop forever.
  const GridSpec grid =
      load_grid(write_grid(tmp, "base: " + base + "\ngrid:\n  name: [\"{name}\", x]\nname: \"n-{name}-{seed}\"\n"));
  const auto points = expand_grid(grid, "base", 1);
  REQUIRE(points.size() == 2);
  CHECK(points[0].name == "n-{name}-1");
  CHECK(points[1].name == "n-x-1");

  // A base name longer than the filesystem allows threw std::filesystem_error (a crash in the CLI).
  const std::string too_long = test_util::error_of<ConfigError>(
      [&] { load_grid(write_grid(tmp, "base: " + std::string(300, 'a') + ".yaml\ngrid: {model.norm: [batch]}\n")); });
  CHECK(too_long.find("key 'base': no experiment file at") != std::string::npos);
  CHECK(too_long.find("File name too long") != std::string::npos);
}

TEST_CASE("data.validation and train.ema: shorthand and map forms, checks, and no change to older configs' hash") {
  ExperimentSpec spec = parse_experiment(kMinimal, "x.yaml", {"data.validation=500", "train.ema=0.999"});
  CHECK(spec.data.validation == 500);
  CHECK(spec.data.validation_seed == 0);
  CHECK(spec.train.ema == doctest::Approx(0.999));
  spec = parse_experiment(kMinimal, "x.yaml", {"data.validation={size: 300, seed: 7}"});
  CHECK(spec.data.validation == 300);
  CHECK(spec.data.validation_seed == 7);
  CHECK(
      config_error(kMinimal, {"data.validation={seed: 7}"}).find("key 'data.validation.size': missing required key") !=
      std::string::npos);
  CHECK(config_error(kMinimal, {"data.limit.train=400", "data.validation=400"})
            .find("key 'data.validation': holds out 400 of the 400 training images") != std::string::npos);
  CHECK(config_error(kMinimal, {"train.ema=1.5"}).find("key 'train.ema'") != std::string::npos);
  // Unused, the new keys stay out of the recorded config, so earlier runs keep matching sweeps.
  const nlohmann::json plain = experiment_json(parse_experiment(kMinimal, "x.yaml"));
  CHECK(!plain["data"].contains("validation"));
  CHECK(!plain["train"].contains("ema"));
  const nlohmann::json with = experiment_json(spec);
  CHECK(with["data"]["validation"]["size"] == 300);
  CHECK(config_hash(with) != config_hash(plain));
}

TEST_CASE(
    "horizontal_flip: alternating and train.lookahead: forms, defaults, checks, and no change to older configs' hash") {
  ExperimentSpec spec = parse_experiment(
      kMinimal, "x.yaml",
      {"data.augment=[horizontal_flip, {horizontal_flip: alternating}, {horizontal_flip: {mode: random}}]",
       "train.lookahead={}"});
  REQUIRE(spec.data.augment.size() == 3);
  CHECK(spec.data.augment[0].mode == "random");
  CHECK(spec.data.augment[1].mode == "alternating");
  CHECK(spec.data.augment[2].mode == "random");
  CHECK(spec.train.lookahead_every == 5);
  CHECK(spec.train.lookahead_decay == doctest::Approx(std::pow(0.95, 5)));
  spec = parse_experiment(kMinimal, "x.yaml", {"train.lookahead={every: 10, decay: 0.5}"});
  CHECK(spec.train.lookahead_every == 10);
  CHECK(spec.train.lookahead_decay == doctest::Approx(0.5));
  CHECK(config_error(kMinimal, {"data.augment=[{horizontal_flip: sideways}]"})
            .find("key 'data.augment.0.horizontal_flip': 'sideways' is not one of: random, alternating") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"data.augment=[{horizontal_flip: {mod: random}}]"})
            .find("key 'data.augment.0.horizontal_flip.mod'") != std::string::npos);
  CHECK(config_error(kMinimal, {"train.lookahead=5"}).find("key 'train.lookahead': must be a map") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"train.lookahead={decay: 1}"}).find("key 'train.lookahead.decay'") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"train.lookahead={}", "train.ema=0.99"})
            .find("train.ema and train.lookahead both average the weights") != std::string::npos);
  // every: 0 is off, so a grid can compare with and without; unused, neither key reaches the recorded config.
  const nlohmann::json plain =
      experiment_json(parse_experiment(kMinimal, "x.yaml", {"data.augment=[horizontal_flip]"}));
  const nlohmann::json off = experiment_json(
      parse_experiment(kMinimal, "x.yaml", {"data.augment=[{horizontal_flip: random}]", "train.lookahead={every: 0}"}));
  CHECK(!plain["train"].contains("lookahead"));
  CHECK(!plain["data"]["augment"][0].contains("mode"));
  CHECK(config_hash(off) == config_hash(plain));
  const nlohmann::json with = experiment_json(spec);
  CHECK(with["train"]["lookahead"]["every"] == 10);
  CHECK(config_hash(with) != config_hash(plain));
  CHECK(experiment_json(parse_experiment(
            kMinimal, "x.yaml", {"data.augment=[{horizontal_flip: alternating}]"}))["data"]["augment"][0]["mode"] ==
        "alternating");
}

TEST_CASE(
    "train.optimizer.param_groups: per-class lr_scale and weight_decay, checks, and groups at their defaults dropped") {
  ExperimentSpec spec = parse_experiment(
      kMinimal, "x.yaml",
      {"train.optimizer.weight_decay=5e-4",
       "train.optimizer.param_groups={norm_scales: {lr_scale: 0}, norm_biases: {lr_scale: 16, weight_decay: 1e-4}, "
       "weights: {weight_decay: 5e-4}, biases: {lr_scale: 1}}"});
  const auto& groups = spec.train.optimizer.param_groups;
  REQUIRE(groups.size() == 2);  // weights and biases as given are their defaults
  CHECK(groups.at("norm_scales").lr_scale == 0.0);
  CHECK(!groups.at("norm_scales").weight_decay);
  CHECK(groups.at("norm_biases").lr_scale == 16.0);
  CHECK(*groups.at("norm_biases").weight_decay == doctest::Approx(1e-4));
  const nlohmann::json with = experiment_json(spec);
  CHECK(with["train"]["optimizer"]["param_groups"]["norm_biases"]["lr_scale"] == 16.0);
  CHECK(!with["train"]["optimizer"]["param_groups"].contains("weights"));

  const nlohmann::json plain = experiment_json(parse_experiment(kMinimal, "x.yaml", {}));
  const nlohmann::json defaults = experiment_json(parse_experiment(
      kMinimal, "x.yaml", {"train.optimizer.param_groups={weights: {}, norm_biases: {lr_scale: 1, weight_decay: 0}}"}));
  CHECK(!plain["train"]["optimizer"].contains("param_groups"));
  CHECK(config_hash(defaults) == config_hash(plain));
  CHECK(config_hash(with) != config_hash(plain));

  CHECK(config_error(kMinimal, {"train.optimizer.param_groups={norm_scale: {lr_scale: 0}}"})
            .find("key 'train.optimizer.param_groups.norm_scale': unknown key (did you mean 'norm_scales'?)") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"train.optimizer.param_groups={biases: {lr_scale: -1}}"})
            .find("key 'train.optimizer.param_groups.biases.lr_scale'") != std::string::npos);
  CHECK(config_error(kMinimal, {"train.optimizer.param_groups={biases: {lr: 2}}"})
            .find("valid keys here: lr_scale, weight_decay") != std::string::npos);
  CHECK(config_error(kMinimal, {"train.optimizer.param_groups=[weights]"})
            .find("key 'train.optimizer.param_groups': must be a map") != std::string::npos);
}

TEST_CASE("model.standardize sets every conv's default, a conv's own key wins, and unused it leaves the hash alone") {
  const std::string text = R"(name: ws
model:
  standardize: true
  layers:
    - conv: {out: 8, padding: 1}
    - residual:
        - conv: {out: 8, padding: 1}
    - conv: {out: 10, kernel: 1, block: false, standardize: false}
    - gap
train: {epochs: 1}
)";
  const ExperimentSpec spec = parse_experiment(text, "ws.yaml");
  std::vector<bool> convs;
  std::function<void(const std::vector<LayerSpec>&)> walk = [&](const std::vector<LayerSpec>& layers) {
    for (const auto& l : layers) {
      if (l.type == "conv") convs.push_back(l.get_bool("standardize"));
      walk(l.children);
    }
  };
  walk(spec.model.layers);
  CHECK(convs == std::vector<bool>{true, true, false});
  const nlohmann::json j = experiment_json(spec);
  CHECK(j["model"]["standardize"] == true);
  CHECK(!j["model"]["layers"][0]["conv"].contains("standardize"));  // equal to the model's default
  const nlohmann::json& layers = j["model"]["layers"];
  CHECK(layers[layers.size() - 2]["conv"]["standardize"] == false);  // the 1x1 conv before gap
  // Without it, nothing about standardization is recorded: earlier runs keep their config hash.
  const nlohmann::json plain = experiment_json(parse_experiment(kMinimal, "x.yaml"));
  CHECK(plain.dump().find("standardize") == std::string::npos);
  CHECK(experiment_json(parse_experiment(kMinimal, "x.yaml", {"model.layers.0.conv.standardize=true"}))
            .dump()
            .find("\"standardize\":true") != std::string::npos);
  const std::string bad = config_error(kMinimal, {"model.standardize=maybe"});
  CHECK(bad.find("model.standardize") != std::string::npos);
}

TEST_CASE(
    "every input is bounded: not a regular file, too large, a second document, ${VAR} in extends, YAML 1.2 scalars") {
  test_util::TempDir tmp;
  const std::string bn = test_util::source_path("experiments/session8/bn.yaml");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp / name, std::ios::binary) << text;
    return std::string(tmp / name);
  };
  auto load_error = [](const std::function<void()>& load) {
    try {
      load();
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };

  // A FIFO is refused before it is opened (opening one blocks until a writer comes).
  const std::string fifo = tmp / "fifo.yaml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(load_error([&] { load_experiment(fifo); }).find("is not a regular file (a device, FIFO or socket)") !=
        std::string::npos);
  CHECK(load_error([&] {
          load_experiment(write("child.yaml", "name: c\nextends: fifo.yaml\n"));
        }).find("child.yaml:2:10: key 'extends': cannot open") != std::string::npos);
  CHECK(load_error([&] { load_grid(tmp.path.string()); }).find("is a directory, not a file") != std::string::npos);
  // Larger than 1 MiB: refused, whatever it holds.
  const std::string big = write("big.yaml", "name: big\ndescription: \"" + std::string(1 << 20, 'x') + "\"\n");
  CHECK(load_error([&] { load_experiment(big); }).find("a config file may have at most 1048576 (1 MiB)") !=
        std::string::npos);
  // A grid file is one document too.
  CHECK(load_error([&] {
          load_grid(write("g.yaml", "base: " + bn + "\ngrid: {model.norm: [batch]}\n---\nseeds: [1]\n"));
        }).find("g.yaml:3:1: a second YAML document begins here") != std::string::npos);
  // A leading '---' (a document start) and a final '...' are one document.
  CHECK(load_error([&] { load_experiment(write("marked.yaml", "---\nextends: " + bn + "\nname: marked\n...\n")); }) ==
        "(no error)");

  // A ',' that starts a line inside a block scalar is text; a stray one elsewhere is named where it
  // stands. (yaml-cpp 0.7's LoadAll never returned on a stray ','; at most two documents are read now.)
  CHECK(load_experiment(write("block.yaml", "extends: " + bn + "\nname: b\ndescription: |\n  one\n  , two\n"))
            .description == "one\n, two\n");
  CHECK(load_error([&] {
          load_grid(write("g2.yaml", "base: " + bn + "\ngrid:\n  model.norm: batch, layer\n%%\n, group\n"));
        }).find("g2.yaml:5:1: ',' separates items only inside [ ] or { }") != std::string::npos);

  // ${VAR:-default} expands in extends: as everywhere else; an unset VAR without a default is named.
  ::unsetenv("RUNNER_TEST_NO_SUCH_VAR");
  const std::string folder = fs::path(bn).parent_path().string();
  CHECK(load_experiment(write("env.yaml", "extends: ${RUNNER_TEST_NO_SUCH_VAR:-" + folder + "}/ln.yaml\nname: env\n"))
            .model.norm == "layer");
  CHECK(load_error([&] {
          load_experiment(write("env2.yaml", "extends: ${RUNNER_TEST_NO_SUCH_VAR}/ln.yaml\nname: e\n"));
        }).find("env2.yaml:1:10: key 'extends': environment variable RUNNER_TEST_NO_SUCH_VAR is not set") !=
        std::string::npos);

  // YAML 1.2's core schema: 0x and 0o integers, true/True/TRUE; 1e3 is not an integer.
  const ExperimentSpec hex = parse_experiment(kMinimal, "x.yaml", {"train.epochs=0x2", "train.batch_size=0o200"});
  CHECK(hex.train.epochs == 2);
  CHECK(hex.train.batch_size == 128);
  CHECK(parse_experiment(kMinimal, "x.yaml", {"train.optimizer.lr=.05"}).train.optimizer.lr == doctest::Approx(0.05));
  CHECK(config_error(kMinimal, {"train.epochs=1e3"}) ==
        "--set train.epochs=1e3: key 'train.epochs': must be an integer, got '1e3'");
  CHECK(config_error(kMinimal, {"train.optimizer.lr=0x1p-3"}).find("must be a number, got '0x1p-3'") !=
        std::string::npos);
  CHECK(config_error(kMinimal, {"model.layers.0.conv.standardize=TRUE"}) == "(no error)");
  CHECK(config_error(kMinimal, {"model.layers.0.conv.standardize=on"}).find("yes/no/on/off are not booleans") !=
        std::string::npos);
}

TEST_CASE(
    "a shorthand use (`- maxpool: 2`, `- stage: 32`, `- residual: [...]`) is addressed by --set like its map form") {
  const std::string text = R"(name: shorthand
model:
  block: [conv, relu, norm]
  blocks:
    stage:
      params: {w: ~, k: 3}
      layers:
        - conv: {out: $w, kernel: $k, padding: 1}
  layers:
    - conv: {out: 8, kernel: 3}
    - stage: 16
    - maxpool: 2
    - residual:
        - conv: {out: 16, kernel: 3, padding: 1}
    - gap
    - conv: {out: 10, kernel: 1, block: false}
train:
  epochs: 2
)";
  // Hand-counted: conv 3->8 k3 (216) + BN 16; stage conv 8->w k3 + BN 2w; residual conv w->w k3 + BN 2w;
  // head w->10 (10w). w = 16: 216+16 + 1152+32 + 2304+32 + 160 = 3912; w = 24: 216+16 + 1728+48 + 5184+48 + 240.
  CHECK(plan_model(parse_experiment(text, "x.yaml").model).total_params == 3912);
  const ExperimentSpec wider = parse_experiment(
      text, "x.yaml",
      {"model.layers.1.stage.w=24", "model.layers.3.residual.layers.0.conv.out=24", "model.layers.5.conv.out=10"});
  CHECK(plan_model(wider.model).total_params == 216 + 16 + 1728 + 48 + 5184 + 48 + 240);
  // The other options of a shorthand use, and the block's defaulted parameter.
  CHECK(config_error(text, {"model.layers.2.maxpool.stride=1", "model.layers.1.stage.k=5"}) == "(no error)");
  // An error inside an expanded shorthand still points at the line it was written on.
  CHECK(config_error(text, {"model.layers.3.residual.layers.0.conv.out=24"})
            .find("x.yaml:14:9: key 'model.layers.3.residual': residual body turns") == 0);
  CHECK(config_error(text, {"model.layers.2.maxpool.strid=1"}).find("unknown key (did you mean 'stride'?)") !=
        std::string::npos);
  // Only list items are shorthand uses: below any other single value is an error, not an expansion (the
  // config fuzzer's find: `train=2` then `train.seed=1`, in a model without blocks, threw from yaml-cpp).
  CHECK(config_error(kMinimal, {"train=2", "train.seed=1"}) ==
        "--set train.seed=1: key 'train.seed': 'seed' is below a single value, not a map");
  CHECK(config_error(text, {"model.layers.0.conv.out.x=1"}) ==
        "--set model.layers.0.conv.out.x=1: key 'model.layers.0.conv.out.x': 'x' is below a single value, not a map");
}

TEST_CASE("a key both swept (grid) and sampled (search.space) is refused at the sampled one, naming the grid's line") {
  test_util::TempDir tmp;
  const std::string base = test_util::source_path("experiments/session8/bn.yaml");
  std::string message;
  try {
    load_grid(write_grid(tmp, "base: " + base + R"(
grid:
  train.optimizer.lr: [0.05, 0.1]
search:
  method: random
  samples: 4
  space:
    train.optimizer.lr: {log_uniform: [0.01, 0.2]}
)"));
  } catch (const ConfigError& e) {
    message = e.what();
  }
  CHECK(message == tmp /
                       "grid.yaml:8:5: key 'search.space.train.optimizer.lr': is also under grid: (line 3); a key is "
                       "either swept (grid) or sampled (search.space): remove one");
}
