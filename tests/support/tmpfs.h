// A tmpfs mounted for a test: a small disk that fills up, or turns read-only, on cue. We run as
// root in CI, so a chmod proves nothing; a mount does. Without CAP_SYS_ADMIN the fault tests skip.
#pragma once

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <filesystem>
#include <string>

namespace subledger::testing {

class Tmpfs {
 public:
  Tmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  bool remount_read_only() {
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace subledger::testing

#define SKIP_UNLESS_MOUNTED(t)                                                          \
  if (!(t).mounted())                                                                   \
  GTEST_SKIP() << "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): the fault " \
                  "cases of issue 9 are not exercised"
