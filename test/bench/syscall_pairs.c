// What one send and one receive of a small message cost over loopback TCP, with the plain and
// the vectored syscalls (a measurement, never a test; issue 14): the proxy's IoHandle uses
// recv()/send() for one slice and readv()/sendmsg() for several because the vectored paths
// cost the kernel more per call. One process, both ends of one connection, pinned by taskset.
//
//   cc -O2 -o /tmp/syscall_pairs test/bench/syscall_pairs.c
//   for i in 1 2 3; do taskset -c 1 /tmp/syscall_pairs 300000 400; done
//
// Prints nanoseconds per send+receive pair for each combination.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static char out[65536], in1[16384], in2[16384];

static void sendPlain(int fd, int len) { send(fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT); }
static void sendVectored(int fd, int len) {
  struct iovec v = {out, (size_t)len};
  struct msghdr m = {0};
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}
static void recvPlain(int fd) { recv(fd, in1, sizeof in1, 0); }
static void recvVectored(int fd) {
  struct iovec r[2] = {{in1, sizeof in1}, {in2, sizeof in2}};
  readv(fd, r, 2);
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 300000;
  const int len = argc > 2 ? atoi(argv[2]) : 400;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(listener, (void*)&a, sizeof a) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, (void*)&a, &alen) != 0) {
    perror("listen");
    return 1;
  }
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(client, (void*)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  int server = accept(listener, NULL, NULL);
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(out, 'x', sizeof out);
  struct {
    const char* name;
    void (*send_fn)(int, int);
    void (*recv_fn)(int);
  } modes[] = {{"send + recv", sendPlain, recvPlain},
               {"sendmsg + recv", sendVectored, recvPlain},
               {"send + readv (2 iovecs)", sendPlain, recvVectored},
               {"sendmsg + readv (2 iovecs)", sendVectored, recvVectored}};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    const double t0 = now();
    for (int i = 0; i < n; i++) {
      modes[m].send_fn(client, len);
      modes[m].recv_fn(server);
    }
    printf("%-28s %6.0f ns per pair (%d-byte messages)\n", modes[m].name, (now() - t0) / n * 1e9,
           len);
  }
  return 0;
}
