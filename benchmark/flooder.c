/*
 * Sends a paced flood of UDP packets to a multicast group on loopback, for
 * the flood rows of benchmark/bench.js. A Node dgram loop tops out near
 * 150k packets/s here; sendmmsg() sends a batch per syscall and keeps the
 * flooder's own cost low on a 2-core machine.
 *
 *   flooder GROUP PORT older|malformed RATE DURATION_MS OLDER_THAN_MS
 *
 * older:     9-byte v1 announcements (0x01, int64 BE ms) older than OLDER_THAN_MS
 * malformed: random bytes with a wrong version byte, and v1 packets shorter
 *            than 9 bytes (never a valid announcement)
 *
 * Prints {"sent":N,"elapsedNs":N,"errors":N} on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define POOL 256
#define BATCH 32
#define MAX_LEN 64

static unsigned char pool[POOL][MAX_LEN];
static size_t lengths[POOL];

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* xorshift64: reproducible garbage without depending on libc's rand(). */
static uint64_t next_random(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

static void fill_older(int64_t older_than_ms) {
  for (int i = 0; i < POOL; i++) {
    uint64_t ts = (uint64_t)(older_than_ms - 1 - i);
    pool[i][0] = 0x01;
    for (int b = 0; b < 8; b++) pool[i][1 + b] = (unsigned char)(ts >> (56 - 8 * b));
    lengths[i] = 9;
  }
}

static void fill_malformed(void) {
  uint64_t state = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < POOL; i++) {
    for (int b = 0; b < MAX_LEN; b++) pool[i][b] = (unsigned char)next_random(&state);
    if (i % 2 == 0) {
      /* wrong version: anything but 0x01, any length 1..64 */
      if (pool[i][0] == 0x01) pool[i][0] = 0x02;
      lengths[i] = 1 + next_random(&state) % MAX_LEN;
    } else {
      /* right version, too short for a timestamp (0..8 bytes) */
      pool[i][0] = 0x01;
      lengths[i] = next_random(&state) % 9;
    }
  }
}

static void sleep_until(uint64_t deadline_ns) {
  struct timespec t = { (time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u) };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s GROUP PORT older|malformed RATE DURATION_MS OLDER_THAN_MS\n", argv[0]);
    return 2;
  }
  double rate = atof(argv[4]);
  uint64_t duration_ns = (uint64_t)atoll(argv[5]) * 1000000u;
  if (strcmp(argv[3], "older") == 0) fill_older(atoll(argv[6]));
  else fill_malformed();

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct in_addr loopback = { htonl(INADDR_LOOPBACK) };
  unsigned char ttl = 1;
  /* Pinned to loopback: nothing leaves the machine even outside a namespace. */
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &loopback, sizeof loopback);
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
  if (fd < 0 || inet_aton(argv[1], &to.sin_addr) == 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
    perror("flooder socket");
    return 1;
  }

  struct iovec iov[BATCH];
  struct mmsghdr messages[BATCH];
  memset(messages, 0, sizeof messages);
  uint64_t sent = 0, errors = 0, start = now_ns(), elapsed = 0;
  while ((elapsed = now_ns() - start) < duration_ns) {
    /* Pace: sleep until the next batch is due at RATE packets/s. */
    uint64_t due_ns = start + (uint64_t)((double)(sent + BATCH) / rate * 1e9);
    if (due_ns > start + elapsed) sleep_until(due_ns);
    for (int i = 0; i < BATCH; i++) {
      int k = (int)((sent + (uint64_t)i) % POOL);
      iov[i].iov_base = pool[k];
      iov[i].iov_len = lengths[k];
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(fd, messages, BATCH, 0);
    if (n > 0) sent += (uint64_t)n;
    else errors++;
  }
  printf("{\"sent\":%llu,\"elapsedNs\":%llu,\"errors\":%llu}\n", (unsigned long long)sent,
         (unsigned long long)elapsed, (unsigned long long)errors);
  return 0;
}
