// `runner data fetch`: download, verify and unpack a dataset archive.
#pragma once
#include <string>

namespace runner {

/// Canonical CIFAR-10 binary archive and its published MD5.
constexpr const char* kCifar10Url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kCifar10Md5 = "c32a1d4ab5d03f1284b67883e8d87530";

/// Downloads `url` (http(s):// or file://) to `file`. Throws DataError.
void download(const std::string& url, const std::string& file);
/// Hex MD5 of a file. Throws DataError if unreadable.
std::string md5_file(const std::string& file);
/// Unpacks a .tar.gz into `dir`, refusing entries that would escape it.
void unpack_tar_gz(const std::string& archive, const std::string& dir);
/// download → MD5 check → unpack → check the expected files; returns the data folder.
std::string fetch_cifar10(const std::string& dir, const std::string& url = kCifar10Url,
                          const std::string& md5 = kCifar10Md5);

}  // namespace runner
