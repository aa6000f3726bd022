/* The performance ceiling behind Mongrel2: a minimal libzmq handler in C.
 *
 *   m2_c_handler SEND_SPEC RECV_SPEC
 *
 * PULLs requests from Mongrel2's send_spec, PUBlishes replies to its
 * recv_spec. Every request gets "Hello, World!"; disconnect notices
 * (path "@*", METHOD JSON) are ignored. It reads only SENDER and CONN_ID of a
 * frame and never parses the headers, so it costs as little as a handler can.
 * Exits cleanly on SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* memmem */

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";

/* Returns the length of the token starting at p (up to a space), or -1 when no
 * space follows within the n remaining bytes. */
static ptrdiff_t token(const char* p, size_t n) {
  const char* sp = memchr(p, ' ', n);
  return sp ? sp - p : -1;
}

/* A Mongrel2 JSON message (disconnect, websocket control) has path "@*" and
 * METHOD JSON, in either header encoding. */
static int is_json_message(const char* path, ptrdiff_t path_len, const char* rest, size_t n) {
  static const char kJson[] = "\"METHOD\":\"JSON\"";
  static const char kTnet[] = "6:METHOD,4:JSON,";
  if (path_len != 2 || path[0] != '@' || path[1] != '*') return 0;
  return memmem(rest, n, kJson, sizeof kJson - 1) != NULL ||
         memmem(rest, n, kTnet, sizeof kTnet - 1) != NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SEND_SPEC RECV_SPEC\n", argv[0]);
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: a blocking recv returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  void* ctx = zmq_ctx_new();
  void* pull = zmq_socket(ctx, ZMQ_PULL);
  void* pub = zmq_socket(ctx, ZMQ_PUB);
  int linger = 0;
  int hwm = 100000;
  zmq_setsockopt(pull, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
  if (zmq_connect(pull, argv[1]) != 0 || zmq_connect(pub, argv[2]) != 0) {
    fprintf(stderr, "m2_c_handler: connect failed: %s\n", zmq_strerror(zmq_errno()));
    zmq_close(pull);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return 1;
  }

  /* "SENDER LEN:ID, " + response; SENDER is a UUID, CONN_ID a small number. */
  char out[512 + sizeof kResponse];
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  int status = 0;
  unsigned long replies = 0;
  while (!g_stop) {
    if (zmq_msg_recv(&msg, pull, 0) < 0) {
      if (zmq_errno() == EINTR) continue;
      if (zmq_errno() == ETERM) break;
      fprintf(stderr, "m2_c_handler: recv: %s\n", zmq_strerror(zmq_errno()));
      status = 1;
      break;
    }
    const char* data = zmq_msg_data(&msg);
    size_t size = zmq_msg_size(&msg);

    ptrdiff_t sender_len = token(data, size);
    if (sender_len <= 0) continue;
    const char* id = data + sender_len + 1;
    size_t left = size - (size_t)sender_len - 1;
    ptrdiff_t id_len = token(id, left);
    if (id_len <= 0) continue;
    const char* path = id + id_len + 1;
    left -= (size_t)id_len + 1;
    ptrdiff_t path_len = token(path, left);
    if (path_len < 0) continue;
    if (is_json_message(path, path_len, path + path_len, left - (size_t)path_len)) continue;

    if ((size_t)(sender_len + id_len) > 480) continue; /* not a Mongrel2 frame */
    int head = snprintf(out, sizeof out, "%.*s %d:%.*s, ", (int)sender_len, data, (int)id_len,
                        (int)id_len, id);
    memcpy(out + head, kResponse, sizeof kResponse - 1);
    size_t out_len = (size_t)head + sizeof kResponse - 1;
    while (zmq_send(pub, out, out_len, 0) < 0) {
      if (zmq_errno() != EINTR || g_stop) break;
    }
    ++replies;
  }

  zmq_msg_close(&msg);
  zmq_close(pull);
  zmq_close(pub);
  zmq_ctx_term(ctx);
  fprintf(stderr, "m2_c_handler: exiting after %lu replies\n", replies);
  return status;
}
