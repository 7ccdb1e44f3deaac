// `runner data fetch` in a runner built with -DRUNNER_FETCH=OFF (no libcurl,
// libarchive or OpenSSL): every entry point says how to get the data instead.
#include "runner/base/errors.h"
#include "runner/train/fetch.h"

namespace runner {

namespace {
[[noreturn]] void unavailable(const std::string& what) {
  throw DataError(what + ": this runner was built without downloads (cmake -DRUNNER_FETCH=OFF). Download " +
                  std::string(kCifar10Url) +
                  " elsewhere, unpack it, and point data.root or $CIFAR10_ROOT at its "
                  "cifar-10-batches-bin folder; or build with -DRUNNER_FETCH=ON");
}
}  // namespace

void download(const std::string& url, const std::string&) { unavailable("download of " + url); }
std::string md5_file(const std::string& file) { unavailable("MD5 of " + file); }
void unpack_tar_gz(const std::string& archive, const std::string&) { unavailable("unpacking " + archive); }
std::string fetch_cifar10(const std::string& dir, const std::string&, const std::string&) {
  unavailable("fetching CIFAR-10 into " + dir);
}

}  // namespace runner
