#pragma once

// Per-thread free lists for objects made and destroyed once per request (issue 14: no heap
// allocation per request on a keep-alive connection in steady state). A class opts in by
// deriving from ThreadLocalFreeList<Self>: its operator new takes a block from the calling
// thread's list (or malloc when the list is empty) and its operator delete puts the block on
// the calling thread's list (or frees it when the list holds kMaxBlocks). No locks: each thread
// only touches its own list; a block made on one thread and freed on another simply moves to
// the other's list (blocks are plain malloc memory).
//
// Under AddressSanitizer the lists are off (every new/delete goes to the allocator) so that a
// use after free of a pooled object is still reported.

#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define PROXY_FREE_LIST_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PROXY_FREE_LIST_DISABLED 1
#endif
#endif

namespace Proxy::Common {

namespace FreeListDetail {

struct Block {
  Block* next;
};

// One thread's list of free blocks of one size. Destroyed at thread exit; a delete after that
// (a thread_local object destroyed later) frees directly.
struct List {
  Block* head = nullptr;
  size_t count = 0;
  ~List() {
    while (head != nullptr) {
      Block* next = head->next;
      std::free(head);
      head = next;
    }
    count = 0;
  }
};

}  // namespace FreeListDetail

template <class T, size_t kMaxBlocks = 256>
class ThreadLocalFreeList {
 public:
  static void* operator new(size_t size) {
#ifndef PROXY_FREE_LIST_DISABLED
    if (size == sizeof(T) && alive()) {
      FreeListDetail::List& l = list();
      if (l.head != nullptr) {
        FreeListDetail::Block* block = l.head;
        l.head = block->next;
        l.count--;
        return block;
      }
    }
#endif
    void* p =
        std::malloc(size < sizeof(FreeListDetail::Block) ? sizeof(FreeListDetail::Block) : size);
    if (p == nullptr) {
      throw std::bad_alloc();
    }
    return p;
  }

  static void operator delete(void* p, size_t size) {
    if (p == nullptr) {
      return;
    }
#ifndef PROXY_FREE_LIST_DISABLED
    if (size == sizeof(T) && alive()) {
      FreeListDetail::List& l = list();
      if (l.count < kMaxBlocks) {
        auto* block = static_cast<FreeListDetail::Block*>(p);
        block->next = l.head;
        l.head = block;
        l.count++;
        return;
      }
    }
#else
    (void)size;
#endif
    std::free(p);
  }

 private:
#ifndef PROXY_FREE_LIST_DISABLED
  // The list, and whether it still exists on this thread (a trivially destructible flag
  // outlives the list's destructor at thread exit).
  struct ListHolder {
    FreeListDetail::List list;
    ~ListHolder() { destroyed() = true; }
  };
  static bool& destroyed() {
    static thread_local bool flag = false;
    return flag;
  }
  static bool alive() {
    return !destroyed();
  }
  static FreeListDetail::List& list() {
    static thread_local ListHolder holder;
    return holder.list;
  }
#endif
};

}  // namespace Proxy::Common
