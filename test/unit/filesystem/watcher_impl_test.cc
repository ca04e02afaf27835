// WatcherImpl over real inotify on a real temp directory, on a real Dispatcher: a file moved
// over a watched one, an entry moved into a watched directory, an in-place write, and the
// errors. The loop runs until the callback stops it (no sleeps: inotify queues the event before
// rename() returns).

#include "proxy/filesystem/watcher_impl.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"

namespace Proxy::Filesystem {
namespace {

class WatcherImplTest : public testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/watcher_test.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { (void)std::system(("rm -rf '" + dir_ + "'").c_str()); }

  void write(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ + "/" + name, std::ios::trunc) << contents;
  }
  void move(const std::string& from, const std::string& to) {
    ASSERT_EQ(std::rename((dir_ + "/" + from).c_str(), (dir_ + "/" + to).c_str()), 0);
  }
  // Runs the loop until a callback exits it (a deadline fails the test instead of hanging).
  void runUntilCalled() {
    Event::TimerPtr deadline = dispatcher_.createTimer([this] {
      ADD_FAILURE() << "no callback within 10 s";
      dispatcher_.exit();
    });
    deadline->enableTimer(std::chrono::seconds(10));
    dispatcher_.run(Event::Dispatcher::RunType::RunUntilExit);
  }

  RealTimeSource time_source_;
  Event::DispatcherImpl dispatcher_{"test", time_source_};
  std::string dir_;
};

TEST_F(WatcherImplTest, FileMovedOverAWatchedFileAndEntriesMovedIntoAWatchedDirectory) {
  WatcherImpl watcher(dispatcher_);
  std::vector<std::string> seen;
  write("secret.yaml", "v1");
  // The file itself: only events naming it count.
  ASSERT_TRUE(watcher
                  .addWatch(dir_ + "/secret.yaml", Watcher::Events::MovedTo,
                            [&](uint32_t events) {
                              EXPECT_EQ(events, Watcher::Events::MovedTo);
                              seen.push_back("file");
                              dispatcher_.exit();
                            })
                  .ok());

  // Another file moved into the directory is not it; then the new version moved over it.
  write("other.tmp", "x");
  move("other.tmp", "other");
  write("secret.yaml.tmp", "v2");
  move("secret.yaml.tmp", "secret.yaml");
  runUntilCalled();
  EXPECT_EQ(seen, std::vector<std::string>{"file"});

  // A directory watch ("dir/"): any entry moved into it, e.g. Kubernetes' ..data symlink.
  ASSERT_TRUE(watcher
                  .addWatch(dir_ + "/", Watcher::Events::MovedTo,
                            [&](uint32_t) {
                              seen.push_back("directory");
                              dispatcher_.exit();
                            })
                  .ok());
  ASSERT_EQ(::symlink("target", (dir_ + "/..data_tmp").c_str()), 0);
  move("..data_tmp", "..data");
  runUntilCalled();
  EXPECT_EQ(seen, (std::vector<std::string>{"file", "directory"}));
}

TEST_F(WatcherImplTest, ModifiedInPlaceOnlyWhenAskedAndErrorsNameThePath) {
  WatcherImpl watcher(dispatcher_);
  write("a", "1");
  int modified = 0;
  ASSERT_TRUE(watcher
                  .addWatch(dir_ + "/a", Watcher::Events::Modified,
                            [&](uint32_t events) {
                              EXPECT_EQ(events, Watcher::Events::Modified);
                              modified++;
                              dispatcher_.exit();
                            })
                  .ok());
  write("a", "2");
  runUntilCalled();
  EXPECT_GE(modified, 1);

  // A directory that does not exist.
  absl::Status status =
      watcher.addWatch(dir_ + "/nowhere/file", Watcher::Events::MovedTo, [](uint32_t) {});
  EXPECT_EQ(status.message(), "cannot watch '" + dir_ + "/nowhere/file': " + dir_ +
                                  "/nowhere/: No such file or directory");
}

}  // namespace
}  // namespace Proxy::Filesystem
