// Buffer::Instance: byte-chain operations, slice boundaries and the per-thread slice cache, and
// non-blocking fd I/O over a socketpair.

#include "proxy/buffer/buffer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/common/free_list.h"  // PROXY_FREE_LIST_DISABLED: the slice cache is off under ASan
#include "test/unit/common/counting_new.h"

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

  // ...and a large one takes everything available in one readv() (into the tail slice's free
  // space and new slices; libevent's evbuffer_read() would stop at 4096 bytes).
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

// --- Slice boundaries, relinking and the slice cache (issue 14) ---

std::vector<RawSlice> rawSlicesOf(const Instance& buffer) {
  std::vector<RawSlice> raw(buffer.getRawSlices(nullptr, 0));
  buffer.getRawSlices(raw.data(), raw.size());
  return raw;
}

TEST(BufferSliceTest, AddFillsTheTailSliceBeforeTakingANewOneAndABigAddTakesOneSlice) {
  // 10 bytes short of a standard slice: one slice.
  Instance buffer;
  buffer.add(std::string(Instance::kSliceSize - 10, 'a'));
  ASSERT_EQ(1u, buffer.getRawSlices(nullptr, 0));

  // 30 more: 10 fill the tail, 20 start a second slice.
  buffer.add(std::string(30, 'b'));
  std::vector<RawSlice> slices = rawSlicesOf(buffer);
  ASSERT_EQ(2u, slices.size());
  EXPECT_EQ(Instance::kSliceSize, slices[0].len);
  EXPECT_EQ(20u, slices[1].len);
  EXPECT_EQ(std::string(Instance::kSliceSize - 10, 'a') + std::string(30, 'b'), buffer.toString());

  // An add larger than a standard slice goes into one slice of its own size.
  Instance big;
  const std::string payload(100 * 1000, 'p');
  big.add(payload);
  EXPECT_EQ(1u, big.getRawSlices(nullptr, 0));
  EXPECT_EQ(payload, big.toString());
}

TEST(BufferSliceTest, PrependFillsTheDrainedRoomThenANewFrontSlice) {
  Instance buffer;
  buffer.add("0123456789");
  buffer.drain(4);  // room for 4 bytes before "456789"

  // Fits in the drained room: still one slice.
  buffer.prepend("ab");
  EXPECT_EQ((std::vector<std::string>{"ab456789"}), slicesOf(buffer));

  // 2 bytes of room left: the last 2 bytes go there, the first 4 into a new front slice.
  buffer.prepend("XYZ123");
  EXPECT_EQ((std::vector<std::string>{"XYZ1", "23ab456789"}), slicesOf(buffer));

  // The new front slice keeps its bytes at the end of its storage: a further prepend fits.
  buffer.prepend("<");
  EXPECT_EQ((std::vector<std::string>{"<XYZ1", "23ab456789"}), slicesOf(buffer));
  EXPECT_EQ(15u, buffer.length());
}

TEST(BufferSliceTest, MoveRelinksLargeSlicesAndCopiesSmallOnesIntoTheTail) {
  Instance source;
  addAsSeparateSlices(source, {std::string(600, 'a'), std::string(10, 'b'), std::string(600, 'c')});
  const std::vector<RawSlice> before = rawSlicesOf(source);
  Instance destination;
  destination.add("head");

  destination.move(source);

  // "head" keeps its slice; the two large slices are the source's own storage, relinked; the
  // 10-byte slice was copied behind the first of them (whose slice has room) and released.
  const std::vector<RawSlice> after = rawSlicesOf(destination);
  ASSERT_EQ(3u, after.size());
  EXPECT_EQ(4u, after[0].len);
  EXPECT_EQ(before[0].mem, after[1].mem);
  EXPECT_EQ(610u, after[1].len);
  EXPECT_EQ(before[2].mem, after[2].mem);
  EXPECT_EQ("head" + std::string(600, 'a') + std::string(10, 'b') + std::string(600, 'c'),
            destination.toString());
  EXPECT_EQ(0u, source.length());
  EXPECT_EQ(0u, source.getRawSlices(nullptr, 0));

  // Into an empty buffer even a small source is relinked, not copied.
  Instance small;
  small.add("tiny");
  const void* small_mem = rawSlicesOf(small)[0].mem;
  Instance empty;
  empty.move(small);
  EXPECT_EQ(small_mem, rawSlicesOf(empty)[0].mem);
}

TEST(BufferSliceTest, MoveWithLengthRelinksWholeSlicesAndCopiesThePartialOne) {
  Instance source;
  addAsSeparateSlices(source, {std::string(600, 'a'), std::string(600, 'b')});
  const std::vector<RawSlice> before = rawSlicesOf(source);
  Instance destination;

  // The first slice whole (relinked) and 100 bytes of the second (copied).
  destination.move(source, /*length=*/700);
  const std::vector<RawSlice> after = rawSlicesOf(destination);
  ASSERT_EQ(1u, after.size()) << "the 100 bytes went into the relinked slice's free space";
  EXPECT_EQ(before[0].mem, after[0].mem);
  EXPECT_EQ(std::string(600, 'a') + std::string(100, 'b'), destination.toString());
  EXPECT_EQ(std::string(500, 'b'), source.toString());
  EXPECT_EQ(static_cast<const char*>(before[1].mem) + 100, rawSlicesOf(source)[0].mem);
}

TEST(BufferSliceTest, LinearizeGathersAcrossSlicesInPlaceOrIntoALargerSlice) {
  // Front slice large enough: its bytes move to the start of its storage and the next slices'
  // bytes follow; the slices emptied on the way are gone.
  Instance buffer;
  addAsSeparateSlices(buffer, {"ab", "cd", "ef", "gh"});
  buffer.drain(1);
  const void* front_mem = rawSlicesOf(buffer)[0].mem;
  void* data = buffer.linearize(5);
  EXPECT_EQ(static_cast<const char*>(front_mem) - 1, data) << "the front slice's own storage";
  EXPECT_EQ((std::vector<std::string>{"bcdef", "gh"}), slicesOf(buffer));

  // More than a standard slice holds, across three slices: one new slice as large.
  Instance large;
  std::string expected;
  for (char c : {'x', 'y', 'z'}) {
    large.appendSliceForTest(std::string(Instance::kSliceSize - 100, c));
    expected += std::string(Instance::kSliceSize - 100, c);
  }
  const size_t size = 2 * Instance::kSliceSize;
  data = large.linearize(size);
  EXPECT_EQ(expected.substr(0, size), std::string(static_cast<const char*>(data), size));
  std::vector<RawSlice> slices = rawSlicesOf(large);
  ASSERT_EQ(2u, slices.size());
  EXPECT_EQ(size, slices[0].len);
  EXPECT_EQ(expected, large.toString());

  // Asking for more than there is makes everything contiguous; an empty buffer has nothing.
  data = large.linearize(10 * Instance::kSliceSize);
  EXPECT_EQ(expected, std::string(static_cast<const char*>(data), expected.size()));
  Instance empty;
  EXPECT_EQ(nullptr, empty.linearize(1));
}

TEST(BufferSliceTest, SearchMatchesANeedleSpreadOverSeveralSlices) {
  Instance buffer;
  addAsSeparateSlices(buffer, {"xa", "a", "b", "cd"});  // "xaabcd"

  // "abc" spans three slices; "aab" starts with a false start ("a" then "a").
  EXPECT_EQ(2, buffer.search("abc"));
  EXPECT_EQ(1, buffer.search("aab"));
  // A needle whose prefix runs off the end of the buffer is not a match.
  EXPECT_EQ(-1, buffer.search("cde"));
  // The start offset falls inside the second slice.
  EXPECT_EQ(-1, buffer.search("aab", /*start=*/2));
  EXPECT_EQ(4, buffer.search("c", /*start=*/3));
  // An empty needle matches where the search starts.
  EXPECT_EQ(3, buffer.search("", /*start=*/3));
}

TEST(BufferSliceTest, AReadReservationUsesTheTailThenNewSlicesAndCommitsOnlyWhatArrived) {
  Instance buffer;
  buffer.add("0123456789");  // the tail slice has kSliceSize - 10 bytes free

  // 64 KiB: the tail's free space, then new standard slices, the last one cut to the rest.
  {
    Reservation reservation = buffer.reserveForRead(64 * 1024);
    ASSERT_EQ(5u, reservation.numSlices());
    EXPECT_EQ(64u * 1024, reservation.length());
    EXPECT_EQ(Instance::kSliceSize - 10, reservation.slices()[0].len);
    EXPECT_EQ(static_cast<const char*>(rawSlicesOf(buffer)[0].mem) + 10,
              reservation.slices()[0].mem);
    EXPECT_EQ(10u, reservation.slices()[4].len);
    // What a readv() of 20,000 bytes would have written.
    size_t left = 20000;
    for (size_t i = 0; i < reservation.numSlices() && left > 0; i++) {
      const size_t n = std::min(left, reservation.slices()[i].len);
      std::memset(reservation.slices()[i].mem, 'r', n);
      left -= n;
    }
    reservation.commit(20000);
  }
  // The tail is full; one new slice holds the rest; the three untouched went back.
  std::vector<RawSlice> slices = rawSlicesOf(buffer);
  ASSERT_EQ(2u, slices.size());
  EXPECT_EQ(Instance::kSliceSize, slices[0].len);
  EXPECT_EQ(20000u - (Instance::kSliceSize - 10), slices[1].len);
  EXPECT_EQ("0123456789" + std::string(20000, 'r'), buffer.toString());

  // A reservation dropped without a commit (a read that failed) adds nothing.
  { Reservation unused = buffer.reserveForRead(1000); }
  EXPECT_EQ(20010u, buffer.length());
  EXPECT_EQ(2u, buffer.getRawSlices(nullptr, 0));
}

TEST(BufferSliceTest, ADrainedBufferHoldsNoSliceAndItsStorageIsReused) {
  Instance buffer;
  buffer.add("GET / HTTP/1.1\r\n\r\n");
  const void* mem = rawSlicesOf(buffer)[0].mem;

  // Drained empty: no slice is left (an idle keep-alive connection's buffers hold nothing).
  buffer.drain(buffer.length());
  EXPECT_EQ(0u, buffer.getRawSlices(nullptr, 0));

#ifndef PROXY_FREE_LIST_DISABLED
  // The slice went to this thread's cache: the next one is the same storage.
  buffer.add("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(mem, rawSlicesOf(buffer)[0].mem);
#else
  (void)mem;
#endif
}

TEST(BufferSliceTest, ABufferFilledOnOneThreadIsDrainedOnAnother) {
  // As a request's buffers are when post()ed to another worker: the other thread releases the
  // slices into its own cache, which it frees when it exits (TSan and ASan clean).
  Instance buffer;
  for (int i = 0; i < 40; i++) {
    buffer.appendSliceForTest(std::string(100, 'x'));
  }
  std::thread other([&buffer] {
    Instance local;
    local.move(buffer);
    EXPECT_EQ(4000u, local.length());
    local.drain(local.length());
  });
  other.join();
  EXPECT_EQ(0u, buffer.length());
  buffer.add("still usable");
  EXPECT_EQ("still usable", buffer.toString());
}

TEST(BufferAllocationTest, AKeepAliveRequestCycleAllocatesNothingOnceWarm) {
#ifdef PROXY_FREE_LIST_DISABLED
  GTEST_SKIP() << "the slice cache is off under AddressSanitizer";
#else
  // One proxied HTTP/1.1 keep-alive request as the proxy's buffers see it: the client's request
  // read from the downstream socket, its header block re-encoded into the upstream write
  // buffer and written; the response read from the upstream socket, a new header block added
  // to the downstream write buffer, the body moved behind it and written. Every read reserves
  // 64 KiB (four slices).
  SocketPair downstream;  // local(): the proxy's side; peer(): the client
  SocketPair upstream;    // local(): the proxy's side; peer(): the upstream server
  constexpr std::string_view kRequest =
      "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\n\r\n";
  constexpr std::string_view kResponseHeaders =
      "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nserver: upstream\r\n\r\n";
  constexpr std::string_view kEncodedResponseHeaders =
      "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nserver: proxy\r\n\r\n";
  static char body[1000];
  std::memset(body, 'b', sizeof(body));
  static char sink[4096];
  Instance down_read, down_write, up_read, up_write;

  const auto one_request = [&]() -> bool {
    // The client sends a request.
    if (::write(downstream.peer(), kRequest.data(), kRequest.size()) !=
        static_cast<ssize_t>(kRequest.size())) {
      return false;
    }
    // The proxy reads it, re-encodes the header block for upstream and writes it.
    if (down_read.readFromFd(downstream.local(), 64 * 1024).rc !=
        static_cast<ssize_t>(kRequest.size())) {
      return false;
    }
    const ssize_t end = down_read.search("\r\n\r\n");
    if (end < 0) {
      return false;
    }
    const size_t header_size = static_cast<size_t>(end) + 4;
    up_write.add(down_read.linearize(header_size), header_size);
    down_read.drain(header_size);
    if (up_write.writeToFd(upstream.local()).rc != static_cast<ssize_t>(header_size) ||
        ::read(upstream.peer(), sink, sizeof(sink)) != static_cast<ssize_t>(header_size)) {
      return false;
    }
    // The upstream answers; the proxy reads the response, encodes its own header block, moves
    // the body behind it and writes both.
    if (::write(upstream.peer(), kResponseHeaders.data(), kResponseHeaders.size()) < 0 ||
        ::write(upstream.peer(), body, sizeof(body)) < 0) {
      return false;
    }
    if (up_read.readFromFd(upstream.local(), 64 * 1024).rc !=
        static_cast<ssize_t>(kResponseHeaders.size() + sizeof(body))) {
      return false;
    }
    down_write.add(kEncodedResponseHeaders);
    up_read.drain(kResponseHeaders.size());
    down_write.move(up_read);
    const ssize_t expected = static_cast<ssize_t>(kEncodedResponseHeaders.size() + sizeof(body));
    return down_write.writeToFd(downstream.local()).rc == expected &&
           ::read(downstream.peer(), sink, sizeof(sink)) == expected &&
           down_read.length() + down_write.length() + up_read.length() + up_write.length() == 0;
  };

  // Warm-up fills the thread's slice cache.
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(one_request());
  }
  // Then 100 requests allocate nothing at all.
  const uint64_t before = ::Proxy::Test::operatorNewCalls();
  bool ok = true;
  for (int i = 0; i < 100 && ok; i++) {
    ok = one_request();
  }
  const uint64_t allocations = ::Proxy::Test::operatorNewCalls() - before;
  ASSERT_TRUE(ok);
  EXPECT_EQ(0u, allocations);
  // And an idle connection's buffers hold no slice.
  EXPECT_EQ(0u, down_read.getRawSlices(nullptr, 0) + down_write.getRawSlices(nullptr, 0) +
                    up_read.getRawSlices(nullptr, 0) + up_write.getRawSlices(nullptr, 0));
#endif
}

}  // namespace
}  // namespace Proxy::Buffer
