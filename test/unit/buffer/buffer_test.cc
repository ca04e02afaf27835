// Buffer::Instance: byte-chain operations and non-blocking fd I/O over a socketpair.

#include "proxy/buffer/buffer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace Proxy::Buffer {
namespace {

// A buffer made of several slices, one per part.
void addAsSeparateSlices(Instance& buffer, const std::vector<std::string>& parts) {
  for (const std::string& part : parts) {
    buffer.appendSliceForTest(part);
  }
}

std::vector<std::string> slicesOf(const Instance& buffer) {
  std::vector<RawSlice> raw(buffer.getRawSlices(nullptr, 0));
  buffer.getRawSlices(raw.data(), raw.size());
  std::vector<std::string> out;
  for (const RawSlice& slice : raw) {
    out.emplace_back(static_cast<const char*>(slice.mem), slice.len);
  }
  return out;
}

// A connected, non-blocking AF_UNIX stream pair, closed on destruction.
class SocketPair {
 public:
  SocketPair() {
    EXPECT_EQ(0, ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_));
  }
  ~SocketPair() {
    closeIfOpen(fds_[0]);
    closeIfOpen(fds_[1]);
  }
  int local() const { return fds_[0]; }
  int peer() const { return fds_[1]; }
  void closePeer() { closeIfOpen(fds_[1]); }

 private:
  static void closeIfOpen(int& fd) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  int fds_[2] = {-1, -1};
};

TEST(BufferTest, AddAppendsAndToStringReturnsEveryByte) {
  Instance buffer;
  EXPECT_EQ(0u, buffer.length());
  EXPECT_EQ("", buffer.toString());

  buffer.add("hello", 5);
  buffer.add(std::string_view(" world"));
  buffer.add(/*data=*/nullptr, /*size=*/0);
  buffer.prepend(">> ");
  EXPECT_EQ(14u, buffer.length());
  EXPECT_EQ(">> hello world", buffer.toString());
}

TEST(BufferTest, AddOfAnotherBufferCopiesAndLeavesItUnchanged) {
  Instance source;
  addAsSeparateSlices(source, {"ab", "cd", "ef"});
  Instance copy;
  copy.add("<");
  copy.add(source);
  copy.add(">");
  EXPECT_EQ("<abcdef>", copy.toString());
  EXPECT_EQ("abcdef", source.toString());

  // Adding a buffer to itself doubles it.
  source.add(source);
  EXPECT_EQ("abcdefabcdef", source.toString());
}

TEST(BufferTest, AddCopiesABufferOfManySlices) {
  // More slices than add() peeks at once.
  Instance source;
  std::string expected;
  std::vector<std::string> parts;
  for (int i = 0; i < 100; i++) {
    parts.push_back("part" + std::to_string(i) + ";");
    expected += parts.back();
  }
  addAsSeparateSlices(source, parts);
  ASSERT_GT(source.getRawSlices(nullptr, 0), 16u);

  Instance copy;
  copy.add(source);
  EXPECT_EQ(expected, copy.toString());
  EXPECT_EQ(expected, source.toString());
}

TEST(BufferTest, MoveTransfersEverythingAndEmptiesTheSource) {
  Instance destination;
  destination.add("head-");
  Instance source;
  source.add("tail");
  destination.move(source);
  EXPECT_EQ("head-tail", destination.toString());
  EXPECT_EQ(0u, source.length());

  // Moving a buffer into itself changes nothing.
  destination.move(destination);
  EXPECT_EQ("head-tail", destination.toString());
}

TEST(BufferTest, MoveCopiesASmallSourceIntoTheTailAndRelinksALargeOne) {
  // Many small moves (responses into a connection's write buffer) share chains instead of
  // pinning one chain each.
  Instance destination;
  destination.add("HTTP/1.1 200 OK\r\n");
  for (int i = 0; i < 10; i++) {
    Instance small;
    small.add("content-length: 0\r\n\r\n");
    destination.move(small);
    EXPECT_EQ(0u, small.length());
  }
  EXPECT_EQ(1u, destination.getRawSlices(nullptr, 0));
  EXPECT_EQ(17u + 10 * 21u, destination.length());

  // A source of kCopyThreshold bytes or more is relinked: its slice is not copied.
  Instance large;
  large.add(std::string(Instance::kCopyThreshold, 'x'));
  RawSlice large_slice;
  large.getRawSlices(&large_slice, 1);
  destination.move(large);
  std::vector<RawSlice> slices(destination.getRawSlices(nullptr, 0));
  destination.getRawSlices(slices.data(), slices.size());
  ASSERT_EQ(2u, slices.size());
  EXPECT_EQ(large_slice.mem, slices[1].mem);
  EXPECT_EQ(0u, large.length());
}

TEST(BufferTest, MoveWithLengthTransfersOnlyThePrefix) {
  Instance source;
  addAsSeparateSlices(source, {"abc", "def", "ghi"});
  Instance destination;

  // A prefix that ends inside the second slice.
  destination.move(source, /*length=*/5);
  EXPECT_EQ("abcde", destination.toString());
  EXPECT_EQ("fghi", source.toString());

  // Asking for more than is there moves what there is.
  destination.move(source, /*length=*/100);
  EXPECT_EQ("abcdefghi", destination.toString());
  EXPECT_EQ(0u, source.length());
}

TEST(BufferTest, DrainRemovesThePrefix) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"GET ", "/ HTTP/1.1\r\n"});
  buffer.drain(6);
  EXPECT_EQ("HTTP/1.1\r\n", buffer.toString());

  // Draining past the end empties the buffer.
  buffer.drain(1000);
  EXPECT_EQ(0u, buffer.length());
}

TEST(BufferTest, SearchFindsNeedlesAcrossSlicesFromAnOffset) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"Host: a\r", "\nHost: b\r\n\r\n"});

  EXPECT_EQ(7, buffer.search("\r\n")) << "spans the first two slices";
  EXPECT_EQ(16, buffer.search("\r\n", /*start=*/8));
  EXPECT_EQ(16, buffer.search("\r\n\r\n"));
  EXPECT_EQ(9, buffer.search("Host", /*start=*/1));
  EXPECT_EQ(-1, buffer.search("Connection"));
  EXPECT_EQ(-1, buffer.search("\r\n", /*start=*/buffer.length()));
  EXPECT_EQ(-1, buffer.search("H", /*start=*/buffer.length() + 1));

  Instance empty;
  EXPECT_EQ(-1, empty.search("x"));
}

TEST(BufferTest, GetRawSlicesReportsEverySliceEvenWhenAskedForFewer) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"one", "two", "three"});
  EXPECT_EQ((std::vector<std::string>{"one", "two", "three"}), slicesOf(buffer));

  // A short array gets the first slices; the return value still counts them all.
  RawSlice first[1];
  EXPECT_EQ(3u, buffer.getRawSlices(first, 1));
  EXPECT_EQ("one", std::string(static_cast<const char*>(first[0].mem), first[0].len));

  Instance empty;
  EXPECT_EQ(0u, empty.getRawSlices(nullptr, 0));
}

TEST(BufferTest, LinearizeMakesThePrefixContiguous) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"GET /", "index.html", " HTTP/1.1"});
  ASSERT_EQ(3u, buffer.getRawSlices(nullptr, 0));

  // The first 15 bytes become one slice; the bytes themselves do not change.
  const void* data = buffer.linearize(15);
  ASSERT_NE(nullptr, data);
  EXPECT_EQ("GET /index.html", std::string(static_cast<const char*>(data), 15));
  EXPECT_EQ("GET /index.html", slicesOf(buffer).front());
  EXPECT_EQ("GET /index.html HTTP/1.1", buffer.toString());
}

TEST(BufferTest, CopyOutCopiesARangeWithoutDraining) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"0123", "4567", "89"});
  char out[6] = {};
  buffer.copyOut(/*start=*/2, /*size=*/6, out);
  EXPECT_EQ("234567", std::string(out, 6));
  EXPECT_EQ(10u, buffer.length());
}

TEST(BufferIoTest, WriteToFdDrainsWhatWasWrittenAndReadFromFdAppends) {
  SocketPair sockets;
  Instance outgoing;
  addAsSeparateSlices(outgoing, {"hello ", "over ", "writev"});

  // One writev() takes all three slices and drains them.
  IoResult written = outgoing.writeToFd(sockets.local());
  ASSERT_TRUE(written.ok()) << std::strerror(written.error);
  EXPECT_EQ(17, written.rc);
  EXPECT_EQ(0u, outgoing.length());

  // The other side appends what arrived to what it already had.
  Instance incoming;
  incoming.add("> ");
  IoResult read = incoming.readFromFd(sockets.peer(), /*max_length=*/1024);
  ASSERT_TRUE(read.ok()) << std::strerror(read.error);
  EXPECT_EQ(17, read.rc);
  EXPECT_EQ("> hello over writev", incoming.toString());
}

TEST(BufferIoTest, ReadFromFdWouldBlockWhenNothingIsThereAndReturnsZeroAtEof) {
  SocketPair sockets;
  Instance buffer;

  // Nothing to read: EAGAIN, reported as wouldBlock(), and the buffer is unchanged.
  IoResult nothing = buffer.readFromFd(sockets.local(), /*max_length=*/1024);
  EXPECT_EQ(-1, nothing.rc);
  EXPECT_TRUE(nothing.wouldBlock()) << std::strerror(nothing.error);
  EXPECT_EQ(0u, buffer.length());

  // The peer closes: end of file reads as 0.
  sockets.closePeer();
  IoResult eof = buffer.readFromFd(sockets.local(), /*max_length=*/1024);
  EXPECT_EQ(0, eof.rc);
  EXPECT_FALSE(eof.wouldBlock());
  EXPECT_EQ(0u, buffer.length());
}

TEST(BufferIoTest, ReadFromFdReadsUpToMaxLengthInOneCall) {
  SocketPair sockets;
  const std::string payload(64 * 1024, 'p');
  ASSERT_EQ(static_cast<ssize_t>(payload.size()),
            ::write(sockets.peer(), payload.data(), payload.size()));

  // max_length bounds a read...
  Instance buffer;
  IoResult small = buffer.readFromFd(sockets.local(), /*max_length=*/10);
  EXPECT_EQ(10, small.rc);
  EXPECT_EQ(10u, buffer.length());

  // ...and a large one takes everything available in one syscall (libevent's own
  // evbuffer_read() would stop at 4096 bytes).
  IoResult large = buffer.readFromFd(sockets.local(), /*max_length=*/128 * 1024);
  EXPECT_EQ(static_cast<ssize_t>(payload.size() - 10), large.rc);
  EXPECT_EQ(payload, buffer.toString());
}

TEST(BufferIoTest, WriteToFdStopsAtEagainAndKeepsTheRest) {
  SocketPair sockets;
  const size_t total = 8 * 1024 * 1024;  // far more than a socket buffer holds
  Instance outgoing;
  outgoing.add(std::string(total, 'w'));

  // Write until the socket pushes back; what was written is drained, the rest stays.
  size_t written = 0;
  IoResult result{0, 0};
  while (true) {
    result = outgoing.writeToFd(sockets.local());
    if (!result.ok()) {
      break;
    }
    ASSERT_GT(result.rc, 0);
    written += static_cast<size_t>(result.rc);
  }
  EXPECT_TRUE(result.wouldBlock()) << std::strerror(result.error);
  EXPECT_GT(written, 0u);
  EXPECT_LT(written, total);
  EXPECT_EQ(total - written, outgoing.length());
}

TEST(BufferIoTest, WriteToFdAfterThePeerClosedFailsWithEpipe) {
  // writev() to a closed socket raises SIGPIPE; the proxy ignores it process-wide, and so
  // does this test, to see the error itself.
  ::signal(SIGPIPE, SIG_IGN);
  SocketPair sockets;
  sockets.closePeer();
  Instance outgoing;
  outgoing.add("lost");
  IoResult result = outgoing.writeToFd(sockets.local());
  EXPECT_EQ(-1, result.rc);
  EXPECT_EQ(EPIPE, result.error);
  EXPECT_FALSE(result.wouldBlock());
  EXPECT_EQ(4u, outgoing.length()) << "nothing was drained";
}

}  // namespace
}  // namespace Proxy::Buffer
