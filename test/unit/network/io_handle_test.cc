#include "proxy/network/io_handle.h"

#include <sys/socket.h>

#include <string>

#include "gtest/gtest.h"

namespace Proxy::Network {
namespace {

constexpr size_t kSlice = Buffer::Instance::kSliceSize;

// A connected pair of nonblocking stream sockets: `reader` is read, `writer` fills it.
struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    reader = IoHandle(fds[0]);
    writer = IoHandle(fds[1]);
  }
  void send(size_t bytes) {
    Buffer::Instance out;
    out.add(std::string(bytes, 'x'));
    while (out.length() > 0) {
      ASSERT_TRUE(writer.write(out).ok());
    }
  }
  IoHandle reader;
  IoHandle writer;
};

TEST(IoHandleTest, ReadsOneSliceUntilAReadFillsItThenAWholeChunkUntilOneReturnsLess) {
  SocketPair pair;
  Buffer::Instance in;

  // Small messages: each read asks for one slice and gets the message.
  pair.send(400);
  Buffer::IoResult io = pair.reader.read(in, 0);
  EXPECT_EQ(io.rc, 400);
  EXPECT_EQ(pair.reader.lastReadLength(), kSlice);

  // A burst larger than a slice: the read fills its slice (more may be waiting)...
  pair.send(40 * 1024 - 400);
  io = pair.reader.read(in, 0);
  EXPECT_EQ(io.rc, static_cast<ssize_t>(kSlice));
  EXPECT_EQ(pair.reader.lastReadLength(), kSlice);
  // ... so the next asks for a whole chunk, and gets the rest at once.
  io = pair.reader.read(in, 0);
  EXPECT_EQ(io.rc, static_cast<ssize_t>(40 * 1024 - 400 - kSlice));
  EXPECT_EQ(pair.reader.lastReadLength(), 64u * 1024);
  EXPECT_EQ(in.length(), 40u * 1024);

  // That read returned more than a slice too: the next still asks for a chunk. It returns
  // less than a slice, and the one after asks for one slice again.
  io = pair.reader.read(in, 0);
  EXPECT_TRUE(io.wouldBlock());
  pair.send(50);
  io = pair.reader.read(in, 0);
  EXPECT_EQ(io.rc, 50);
  EXPECT_EQ(pair.reader.lastReadLength(), 64u * 1024);
  pair.send(50);
  io = pair.reader.read(in, 0);
  EXPECT_EQ(io.rc, 50);
  EXPECT_EQ(pair.reader.lastReadLength(), kSlice);
  EXPECT_EQ(in.length(), 40u * 1024 + 100);
}

TEST(IoHandleTest, AReadNeverAsksForMoreThanItsLimit) {
  SocketPair pair;
  Buffer::Instance in;
  pair.send(3000);
  const Buffer::IoResult io = pair.reader.read(in, 1000);
  EXPECT_EQ(io.rc, 1000);
  EXPECT_EQ(pair.reader.lastReadLength(), 1000u);
}

TEST(IoHandleTest, WritesOneSliceOrManyAndDrainsWhatWasWritten) {
  SocketPair pair;
  Buffer::Instance out;
  out.add(std::string(100, 'a'));  // one slice
  Buffer::IoResult io = pair.writer.write(out);
  EXPECT_EQ(io.rc, 100);
  EXPECT_EQ(out.length(), 0u);
  out.add(std::string(3 * kSlice, 'b'));  // several slices: one sendmsg
  io = pair.writer.write(out);
  EXPECT_EQ(io.rc, static_cast<ssize_t>(3 * kSlice));
  EXPECT_EQ(out.length(), 0u);

  Buffer::Instance in;
  while (in.length() < 100 + 3 * kSlice) {
    ASSERT_GT(pair.reader.read(in, 0).rc, 0);
  }
  EXPECT_EQ(in.toString(), std::string(100, 'a') + std::string(3 * kSlice, 'b'));
}

}  // namespace
}  // namespace Proxy::Network
