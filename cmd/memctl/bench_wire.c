// The wire row of memctl bench: see bench_wire.h.

#include "bench_wire.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define WIRE_RBUF_INITIAL (64 * 1024)

static void wire_set_timeouts(int fd, int timeout_ms) {
  struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int wire_connect_tcp(const char *host, const char *port, int timeout_ms, char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
    return -1;
  }
  int fd = -1, saved = 0;
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    wire_set_timeouts(fd, timeout_ms);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      break;
    }
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(err, errlen, "connect %s:%s: %s", host, port, strerror(saved));
    return -1;
  }
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    snprintf(err, errlen, "TCP_NODELAY: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static int wire_connect_unix(const char *path, int timeout_ms, char *err, size_t errlen) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, errlen, "%s: path too long for a Unix socket", path);
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  wire_set_timeouts(fd, timeout_ms);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

wire_conn *wire_open(const char *host, const char *port, const char *path, int timeout_ms, char *err,
                     size_t errlen) {
  int fd = host != NULL ? wire_connect_tcp(host, port, timeout_ms, err, errlen)
                        : wire_connect_unix(path, timeout_ms, err, errlen);
  if (fd < 0) {
    return NULL;
  }
  wire_conn *c = calloc(1, sizeof *c);
  if (c != NULL) {
    c->fd = -1;
    c->rcap = WIRE_RBUF_INITIAL;
    c->rbuf = malloc(c->rcap);
    c->scap = 512;
    c->sbuf = malloc(c->scap);
  }
  if (c == NULL || c->rbuf == NULL || c->sbuf == NULL) {
    snprintf(err, errlen, "out of memory");
    wire_close(c);
    close(fd);
    return NULL;
  }
  c->fd = fd;
  return c;
}

void wire_close(wire_conn *c) {
  if (c == NULL) {
    return;
  }
  if (c->fd >= 0) {
    close(c->fd);
  }
  free(c->rbuf);
  free(c->sbuf);
  free(c);
}

static int wire_fail(wire_conn *c, const char *fmt, const char *arg) {
  snprintf(c->err, sizeof c->err, fmt, arg);
  return WIRE_ERROR;
}

// wire_reserve makes room for n bytes in the send buffer.
static int wire_reserve(wire_conn *c, size_t n) {
  if (n <= c->scap) {
    return 0;
  }
  size_t cap = c->scap;
  while (cap < n) {
    cap *= 2;
  }
  char *p = realloc(c->sbuf, cap);
  if (p == NULL) {
    return wire_fail(c, "%s", "out of memory");
  }
  c->sbuf = p;
  c->scap = cap;
  return 0;
}

// wire_send sends the n bytes of c->sbuf: one send() unless the kernel
// takes less.
static int wire_send(wire_conn *c, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = send(c->fd, c->sbuf + done, n - done, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) {
        continue;
      }
      return wire_fail(c, "send: %s", errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
    }
    done += (size_t)k;
  }
  return 0;
}

// wire_fill receives until rbuf[rpos:] holds at least n bytes.
static int wire_fill(wire_conn *c, size_t n) {
  if (c->rlen - c->rpos >= n) {
    return 0;
  }
  if (c->rpos > 0) {
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->rpos = 0;
  }
  if (n > c->rcap) {
    size_t cap = c->rcap;
    while (cap < n) {
      cap *= 2;
    }
    char *p = realloc(c->rbuf, cap);
    if (p == NULL) {
      return wire_fail(c, "%s", "out of memory");
    }
    c->rbuf = p;
    c->rcap = cap;
  }
  while (c->rlen < n) {
    ssize_t k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (k < 0) {
      if (errno == EINTR) {
        continue;
      }
      return wire_fail(c, "recv: %s", errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
    }
    if (k == 0) {
      return wire_fail(c, "%s", "recv: the server closed the connection");
    }
    c->rlen += (size_t)k;
  }
  return 0;
}

// wire_line receives a whole line and returns its length without the
// "\r\n" (the line starts at rbuf + rpos), or WIRE_ERROR.
static ssize_t wire_line(wire_conn *c) {
  size_t from = c->rpos;
  for (;;) {
    char *nl = memchr(c->rbuf + from, '\n', c->rlen - from);
    if (nl != NULL) {
      size_t end = (size_t)(nl - c->rbuf);
      if (end == c->rpos || nl[-1] != '\r') {
        return wire_fail(c, "%s", "a reply line that does not end in \\r\\n");
      }
      return (ssize_t)(end - 1 - c->rpos);
    }
    size_t have = c->rlen - c->rpos;
    if (have > 4096) {
      return wire_fail(c, "%s", "a reply line longer than 4096 bytes");
    }
    if (wire_fill(c, have + 1) != 0) {
      return WIRE_ERROR;
    }
    from = c->rpos + have;
  }
}

static void wire_consumed(wire_conn *c, size_t n) {
  c->rpos += n;
  if (c->rpos == c->rlen) {
    c->rpos = c->rlen = 0;
  }
}

// wire_bad_line records an unexpected reply line and consumes it.
static int wire_bad_line(wire_conn *c, size_t len, const char *what) {
  snprintf(c->err, sizeof c->err, "%s: %.*s", what, (int)(len > 200 ? 200 : len), c->rbuf + c->rpos);
  wire_consumed(c, len + 2);
  return WIRE_ERROR;
}

ssize_t wire_get(wire_conn *c, const char *key, size_t klen, char *buf, size_t cap) {
  c->err[0] = '\0';
  if (wire_reserve(c, klen + 6) != 0) {
    return WIRE_ERROR;
  }
  memcpy(c->sbuf, "get ", 4);
  memcpy(c->sbuf + 4, key, klen);
  memcpy(c->sbuf + 4 + klen, "\r\n", 2);
  if (wire_send(c, klen + 6) != 0) {
    return WIRE_ERROR;
  }
  ssize_t len = wire_line(c);
  if (len < 0) {
    return WIRE_ERROR;
  }
  const char *line = c->rbuf + c->rpos;
  if (len == 3 && memcmp(line, "END", 3) == 0) {
    wire_consumed(c, 5);
    return WIRE_MISS;
  }
  // VALUE <key> <flags> <bytes>
  if ((size_t)len <= 6 + klen || memcmp(line, "VALUE ", 6) != 0) {
    return wire_bad_line(c, (size_t)len, "get: unexpected reply");
  }
  if (memcmp(line + 6, key, klen) != 0 || line[6 + klen] != ' ') {
    return wire_bad_line(c, (size_t)len, "get: a reply for another key");
  }
  const char *p = line + 6 + klen + 1, *end = line + len;
  while (p < end && *p != ' ') { // flags
    p++;
  }
  size_t n = 0;
  int digits = 0;
  for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
    n = n * 10 + (size_t)(*p - '0');
  }
  if (digits == 0 || digits > 9 || (p < end && *p != ' ')) {
    return wire_bad_line(c, (size_t)len, "get: a VALUE line without a length");
  }
  size_t head = (size_t)len + 2, total = head + n + 2 + 5;
  if (wire_fill(c, total) != 0) {
    return WIRE_ERROR;
  }
  const char *data = c->rbuf + c->rpos + head;
  if (memcmp(data + n, "\r\nEND\r\n", 7) != 0) {
    c->rpos = c->rlen = 0; // out of step: drop what was received
    return wire_fail(c, "%s", "get: the value is not followed by \\r\\nEND\\r\\n");
  }
  ssize_t ret = WIRE_TOO_LARGE;
  if (n <= cap) {
    memcpy(buf, data, n);
    ret = (ssize_t)n;
  }
  wire_consumed(c, total);
  return ret;
}

int wire_set(wire_conn *c, const char *key, size_t klen, const char *val, size_t vlen, long exptime) {
  c->err[0] = '\0';
  if (wire_reserve(c, klen + vlen + 64) != 0) {
    return WIRE_ERROR;
  }
  memcpy(c->sbuf, "set ", 4);
  memcpy(c->sbuf + 4, key, klen);
  size_t n = 4 + klen;
  n += (size_t)snprintf(c->sbuf + n, c->scap - n, " 0 %ld %zu\r\n", exptime, vlen);
  memcpy(c->sbuf + n, val, vlen);
  n += vlen;
  memcpy(c->sbuf + n, "\r\n", 2);
  n += 2;
  if (wire_send(c, n) != 0) {
    return WIRE_ERROR;
  }
  ssize_t len = wire_line(c);
  if (len < 0) {
    return WIRE_ERROR;
  }
  if (len != 6 || memcmp(c->rbuf + c->rpos, "STORED", 6) != 0) {
    return wire_bad_line(c, (size_t)len, "set: unexpected reply");
  }
  wire_consumed(c, 8);
  return 0;
}
