// Stage "export": a run's trained network as ONNX and as a PyTorch module, each
// checked by a runtime this project did not write (onnxruntime from npm, Debian's
// python3-torch) on real CIFAR-10 test images against the runner's own logits.
#include "runner_version.h"  // RUNNER_ONNX
#if RUNNER_ONNX
#include <onnx/onnx_pb.h>
#endif

#include <torch/version.h>
#include <filesystem>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include "doctest_torch.h"

#include "layers/layer_def.h"
#include "runner/config/config.h"
#include "runner/export/portable.h"
#include "test_util.h"

namespace {

using test_util::run_runner;
using test_util::TempDir;

/// A short training on real data: a few hundred images, one epoch.
std::string short_run(const std::string& experiment, const std::string& db, const std::string& extra = "") {
  return "run " + test_util::source_path(experiment) + " --set data.root=" + test_util::cifar_root() +
         " --set train.epochs=1 --set data.limit.train=512 --set data.limit.test=200 --db " + db + " " + extra;
}

/// Exports run 1 of `db` in `format` with --verify and checks the proof it prints.
void check_export(const std::string& db, const std::string& format, const std::string& out,
                  const std::string& extra = "") {
  if (format == "onnx" && !RUNNER_ONNX) {
    MESSAGE("SKIPPED: this build has no ONNX export (-DRUNNER_ONNX=OFF)");
    return;
  }
  const auto r = run_runner("export 1 --db " + db + " --format " + format + " --out " + out + " --verify " + extra);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("top-1 differs on 0,") != std::string::npos);
  CHECK(r.output.find("— equal") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex("largest logit difference ([0-9.e+-]+)")));
  CHECK(std::stod(m[1]) <= 1e-4);
  MESSAGE(format << (extra.empty() ? "" : " " + extra) << ": largest logit difference " << m[1]);
}

void check_network(const std::string& experiment, const std::string& sets = "") {
  TempDir tmp;
  const std::string db = tmp / "r.db";
  const auto trained = run_runner(short_run(experiment, db, sets));
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  MESSAGE(experiment << " " << sets);
  check_export(db, "onnx", tmp / "model.onnx");
  check_export(db, "pytorch", tmp / "model_py");
}

void collect_types(const std::vector<runner::LayerSpec>& layers, std::set<std::string>& types,
                   std::set<std::string>& norms) {
  for (const auto& l : layers) {
    types.insert(l.type);
    if (l.type == "norm") norms.insert(l.get_string("type"));
    collect_types(l.children, types, norms);
  }
}

const std::vector<std::string> kExportNetworks{
    "experiments/session8/bn.yaml",       "experiments/session8/ln.yaml",     "experiments/session8/gn.yaml",
    "experiments/best/bn.yaml",           "experiments/best/ln.yaml",         "experiments/best/gn.yaml",
    "tests/data/export/activations.yaml", "tests/data/export/containers.yaml"};

}  // namespace

/// The layer types and norms `runner layers` lists: the runner's registry, without
/// the ones only the test binary registers (tests/layers/).
std::pair<std::vector<std::string>, std::vector<std::string>> listed_layers() {
  const auto listed = run_runner("layers");
  REQUIRE(listed.exit_code == 0);
  std::vector<std::string> types, norms;
  std::istringstream lines(listed.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("norms: ", 0) == 0) {
      std::istringstream names(line.substr(7));
      for (std::string name; std::getline(names, name, ',');) norms.push_back(name.substr(name.find_first_not_of(' ')));
    } else if (line.find(':') != std::string::npos) {
      types.push_back(line.substr(0, line.find(':')));
    }
  }
  REQUIRE(types.size() >= 10);
  REQUIRE(norms.size() >= 4);
  return {types, norms};
}

TEST_CASE("every layer type and norm runner layers lists has an export lowering, and the export tests train them all") {
  const auto lowered = runner::lowered_layer_types();
  const auto lowered_norms = runner::lowered_norm_types();
  std::set<std::string> used, used_norms;
  ::setenv("CIFAR10_ROOT", test_util::cifar_root().c_str(), 1);
  for (const auto& file : kExportNetworks)
    collect_types(runner::load_experiment(test_util::source_path(file)).model.layers, used, used_norms);
  const auto [types, norms] = listed_layers();
  for (const auto& name : types) {
    INFO("layer type " << name);
    CHECK(std::find(lowered.begin(), lowered.end(), name) != lowered.end());
    CHECK(used.count(name) == 1);
  }
  for (const auto& name : norms) {
    INFO("norm " << name);
    CHECK(std::find(lowered_norms.begin(), lowered_norms.end(), name) != lowered_norms.end());
    CHECK(used_norms.count(name) == 1);
  }
}

TEST_CASE("export: the seed network with BatchNorm, as ONNX and PyTorch, and with the normalization folded in") {
  TempDir tmp;
  const std::string db = tmp / "r.db";
  const auto trained = run_runner(short_run("experiments/session8/bn.yaml", db));
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  check_export(db, "onnx", tmp / "model.onnx");
  check_export(db, "pytorch", tmp / "model_py");
  check_export(db, "onnx", tmp / "raw.onnx", "--raw-input");
  check_export(db, "pytorch", tmp / "raw_py", "--raw-input");

#if RUNNER_ONNX
  {  // the ONNX file: opset 17, IR 8, a symbolic batch, the run in its metadata
    onnx::ModelProto model;
    const std::string bytes = test_util::read_file(tmp / "model.onnx");
    REQUIRE(model.ParseFromString(bytes));
    CHECK(model.ir_version() == 8);
    REQUIRE(model.opset_import_size() == 1);
    CHECK(model.opset_import(0).version() == 17);
    const auto& input = model.graph().input(0).type().tensor_type().shape();
    REQUIRE(input.dim_size() == 4);
    CHECK(input.dim(0).dim_param() == "batch");
    CHECK(input.dim(1).dim_value() == 3);
    std::map<std::string, std::string> meta;
    for (const auto& e : model.metadata_props()) meta[e.key()] = e.value();
    CHECK(meta["runner.run_id"] == "1");
    CHECK(meta["runner.class_names"] == "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck");
    CHECK(meta["runner.config_yaml"].find("name: session8-bn") != std::string::npos);
    CHECK(meta["runner.config_hash"].size() == 16);
    CHECK(std::regex_match(meta["runner.test_acc"], std::regex("[0-9]+\\.[0-9]{2}")));
    for (const auto& node : model.graph().node()) CHECK(node.op_type() != "Dropout");
  }
#endif
  {  // model.py names its modules like the rows of runner check's summary table
    const std::string py = test_util::read_file(tmp / "model_py/model.py");
    const auto table = run_runner("check " + test_util::source_path("experiments/session8/bn.yaml"));
    std::regex row("([A-Za-z0-9]+)-([0-9]+) ");
    int rows = 0;
    for (auto it = std::sregex_iterator(table.output.begin(), table.output.end(), row); it != std::sregex_iterator();
         ++it, ++rows) {
      std::string name = (*it)[1];
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      name += "_" + std::string((*it)[2]);
      INFO(name);
      CHECK(py.find(name) != std::string::npos);
    }
    CHECK(rows == 30);
    CHECK(py.find("class Net(nn.Module):") != std::string::npos);
    CHECK(test_util::read_file(tmp / "model_py/README.md").find("load_state_dict") != std::string::npos);
  }
}

TEST_CASE("runner predict: the top three classes of PNG and JPEG files of any size, as the run classifies them") {
  TempDir tmp;
  const std::string db = tmp / "r.db";
  REQUIRE(run_runner(short_run("experiments/session8/bn.yaml", db)).exit_code == 0);
  const std::string images = test_util::source_path("tests/data/images/");
  // test0_32x32.png is test image 0 as it is: predict must say what the run's own evaluation said.
  const std::string wrong = test_util::run_shell("sqlite3 " + db +
                                                 " 'SELECT predicted_class FROM misclassified WHERE run_id=1 AND "
                                                 "test_index=0'")
                                .output;
  const char* const kClasses[] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                  "dog",      "frog",       "horse", "ship", "truck"};
  const std::string expected = kClasses[wrong.empty() ? 8 : std::stoi(wrong)];  // test image 0 is a ship (8)
  auto r = run_runner("predict 1 " + images + "test0_32x32.png " + images + "test1_96x72.jpg " + images +
                      "test0_gray.png --db " + db);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::regex line(": ([a-z]+) ([0-9.]+) %, ([a-z]+) ([0-9.]+) %, ([a-z]+) ([0-9.]+) %\n");
  std::vector<std::smatch> lines;
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), line); it != std::sregex_iterator(); ++it)
    lines.push_back(*it);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0][1] == expected);
  for (const auto& m : lines) {
    CHECK(std::stod(m[2]) >= std::stod(m[4]));
    CHECK(std::stod(m[4]) >= std::stod(m[6]));
    CHECK(std::stod(m[2]) + std::stod(m[4]) + std::stod(m[6]) <= 100.05);
    CHECK((m[1] != m[3] && m[3] != m[5] && m[1] != m[5]));
  }
  r = run_runner("predict 1 " + images + "test0_32x32.png --json --db " + db);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("\"class\": \"" + expected + "\"") != std::string::npos);
  CHECK(r.output.find("\"probability\": ") != std::string::npos);

  SUBCASE("a file that is not an image, a truncated JPEG, a missing file: exit 4, nothing printed for the others") {
    for (const std::string& bad :
         {test_util::source_path("README.md"), images + "truncated.jpg", images + "none.png"}) {
      r = run_runner("predict 1 " + images + "test0_32x32.png " + bad + " --db " + db);
      INFO(r.output);
      CHECK(r.exit_code == 4);
      CHECK(r.output.find(bad) != std::string::npos);
      CHECK(r.output.find("test0_32x32.png:") == std::string::npos);
    }
  }
}

TEST_CASE("export: the seed network with LayerNorm") { check_network("experiments/session8/ln.yaml"); }
TEST_CASE("export: the seed network with GroupNorm") { check_network("experiments/session8/gn.yaml"); }
// On Debian 13 these networks' convolutions (24, 44, 56 channels) are where LibTorch 2.6 with the
// system oneDNN computed wrong results; the runner's check turns oneDNN off there (docs/platforms.md).
TEST_CASE("export: the best network's shape with BatchNorm") { check_network("experiments/best/bn.yaml"); }
TEST_CASE("export: the best network's shape with LayerNorm") { check_network("experiments/best/ln.yaml"); }
TEST_CASE("export: the best network's shape with GroupNorm") { check_network("experiments/best/gn.yaml"); }
TEST_CASE("export: every activation, dropout, a linear head, no norm, EMA weights") {
  check_network("tests/data/export/activations.yaml");
}
TEST_CASE("export: whiten, standardized and grouped convs, concat, projection, se, global pools") {
  check_network("tests/data/export/containers.yaml");
}

TEST_CASE("export refuses what it cannot export faithfully, with its exit code, and writes nothing" *
          doctest::skip(!RUNNER_ONNX)) {
  TempDir tmp;
  const std::string db = tmp / "r.db";
  REQUIRE(run_runner(short_run("tests/data/export/activations.yaml", db)).exit_code == 0);
  REQUIRE(run_runner(short_run("tests/data/export/containers.yaml", db)).exit_code == 0);
  const std::string out = tmp / "m.onnx";
  auto export_run = [&](const std::string& args) { return run_runner("export " + args + " --db " + db); };
  auto nothing_written = [&] {
    for (const auto& e : std::filesystem::directory_iterator(tmp.path)) {
      const std::string name = e.path().filename().string();
      CHECK((name == "r.db" || name == "checkpoints" || name.rfind("r.db-", 0) == 0));
    }
  };

  SUBCASE("an unknown run") {
    const auto r = export_run("7 --out " + out);
    CHECK(r.exit_code == 5);
    CHECK(r.output.find("7") != std::string::npos);
    nothing_written();
  }
  SUBCASE("a run that did not finish, unless --allow-unfinished, which names its epoch") {
    REQUIRE(test_util::run_shell("sqlite3 " + db + " \"UPDATE runs SET status='interrupted' WHERE id=1\"").exit_code ==
            0);
    auto r = export_run("1 --out " + out);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("run 1 is interrupted") != std::string::npos);
    CHECK(r.output.find("--allow-unfinished") != std::string::npos);
    nothing_written();
    r = export_run("1 --out " + out + " --allow-unfinished");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("interrupted after epoch 1") != std::string::npos);
  }
  SUBCASE("a missing, a corrupt, and another network's checkpoint") {
    auto checkpoint_of = [&](int id) {
      std::string path =
          test_util::run_shell("sqlite3 " + db + " 'SELECT checkpoint FROM runs WHERE id=" + std::to_string(id) + "'")
              .output;
      while (!path.empty() && path.back() == '\n') path.pop_back();
      return path;
    };
    const std::string checkpoint = checkpoint_of(1);
    REQUIRE(std::filesystem::exists(checkpoint));
    std::filesystem::rename(checkpoint, tmp / "checkpoints/kept.pt");
    auto r = export_run("1 --out " + out);
    CHECK(r.exit_code == 4);
    CHECK(r.output.find("checkpoint is missing") != std::string::npos);
    {
      std::ofstream f(checkpoint, std::ios::binary);
      f << "not a checkpoint";
    }
    r = export_run("1 --out " + out);
    CHECK(r.exit_code == 4);
    CHECK(r.output.find("cannot read the trained weights") != std::string::npos);
    std::filesystem::copy_file(checkpoint_of(2), checkpoint, std::filesystem::copy_options::overwrite_existing);
    r = export_run("1 --out " + out);
    CHECK(r.exit_code == 4);
    CHECK(r.output.find("cannot read the trained weights") != std::string::npos);
    std::filesystem::remove(checkpoint);
    std::filesystem::rename(tmp / "checkpoints/kept.pt", checkpoint);
    nothing_written();
  }
  SUBCASE("an existing output unless --force, and a folder that does not exist") {
    REQUIRE(export_run("1 --out " + out).exit_code == 0);
    const auto before = test_util::read_file(out);
    auto r = export_run("1 --out " + out);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("exists; --force replaces it") != std::string::npos);
    CHECK(export_run("1 --out " + out + " --force").exit_code == 0);
    CHECK(test_util::read_file(out) == before);  // the same weights give the same bytes
    std::filesystem::create_directory(tmp / "py");
    r = export_run("1 --format pytorch --out " + (tmp / "py"));
    CHECK(r.exit_code == 2);
    r = export_run("1 --format pytorch --out " + (tmp / "py") + " --force");
    CHECK(r.exit_code == 0);
    CHECK(std::filesystem::exists(tmp / "py/weights.pt"));
    r = export_run("1 --out " + (tmp / "no/such/folder/m.onnx"));
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("does not exist") != std::string::npos);
    for (const auto& e : std::filesystem::directory_iterator(tmp.path))
      CHECK(e.path().filename().string().find("partial") == std::string::npos);
  }
}
