// The "wire" row of memctl bench: one plain blocking socket to memcached,
// and one C call from Go per request, which sends the ASCII request with
// one send() and recv()s until the whole reply is in. It is the limit of
// one round trip through the kernel's socket for a client that, like this
// library, pays cgo's per-call cost once per request. Compiled into memctl
// only, never into the library package.
#ifndef MEMCTL_BENCH_WIRE_H
#define MEMCTL_BENCH_WIRE_H

#include <stddef.h>
#include <sys/types.h>

// wire_conn is one connection with its send and receive buffers.
typedef struct wire_conn {
  int fd;
  char *sbuf;          // the request being sent
  size_t scap;
  char *rbuf;          // bytes received: rbuf[rpos:rlen] are not consumed yet
  size_t rcap, rpos, rlen;
  char err[256];       // the last error's message
} wire_conn;

// Results of wire_get besides a value's length (>= 0).
enum { WIRE_MISS = -1, WIRE_ERROR = -2, WIRE_TOO_LARGE = -3 };

// wire_open connects to host:port over TCP (TCP_NODELAY on), or to the
// Unix socket path if host is NULL, with recv and send timeouts of
// timeout_ms. It returns NULL with a message in err.
wire_conn *wire_open(const char *host, const char *port, const char *path, int timeout_ms, char *err,
                     size_t errlen);
void wire_close(wire_conn *c);

// wire_get sends "get <key>\r\n" and reads the reply. On a hit it copies
// the value into buf (of cap bytes) and returns its length; else it
// returns WIRE_MISS, WIRE_TOO_LARGE (the reply was read, the value did not
// fit) or WIRE_ERROR (the message in c->err).
ssize_t wire_get(wire_conn *c, const char *key, size_t klen, char *buf, size_t cap);

// wire_set sends "set <key> 0 <exptime> <n>\r\n<data>\r\n" and reads
// "STORED\r\n": 0, else WIRE_ERROR (the message in c->err).
int wire_set(wire_conn *c, const char *key, size_t klen, const char *val, size_t vlen, long exptime);

#endif
