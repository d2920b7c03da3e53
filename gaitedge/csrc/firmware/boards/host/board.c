/*
 * board.c - host (POSIX) board: the same firmware as a process, for fast tests.
 *
 *   gaitedge-fw-host [--tcp PORT | --pty] [--flash FILE] [--power-cut N]
 *
 *   serial   --tcp PORT: listen on 127.0.0.1:PORT (0 = any free port), one client at a
 *            time; when it disconnects, wait for the next.  --pty: a pseudo terminal.
 *            The first stdout line names the pyserial URL: "serial socket://127.0.0.1:P"
 *            or "serial /dev/pts/N".
 *   flash    --flash FILE: the two weight slots and the two settings pages (sensor mounting)
 *            live in FILE (created as erased 0xFF; a file of the older slots-only size gets
 *            erased settings pages appended), mapped shared, so a restart of the process with
 *            the same file keeps what was committed.  Without --flash they live in memory.
 *   reset    REBOOT restarts the firmware inside the process (the connection stays).
 *   power    --power-cut N (tests of torn weight updates; host build only): the power fails
 *            during the flash operation that would spend unit N (counted from 0) of the
 *            programming budget.  Units: every programmed byte (board_slot_write,
 *            board_cfg_write) is one unit, every erase (slot or settings page) is one unit.
 *            A write cut at unit N leaves the bytes before it programmed and the rest of that
 *            write untouched.  An erase cut short leaves the first half of the erased region
 *            0xFF and the second half with its old bytes (a real interrupted erase leaves an
 *            unknown mix; this model keeps a record at the end of a slot intact while the
 *            start is gone, the harder case for a slot whose commit record is its last bytes).
 *            Then the board msyncs the file and _exit()s with status 86 at once: no reply,
 *            no clean shutdown.  While the budget lasts, every flash operation prints
 *            "gaitedge-fw-host: power-cut: U flash units used" on stderr (U: the total so
 *            far), so a run with a large N measures the units an operation needs.
 *            Without the option nothing is counted and nothing is printed.
 *   ticks    microseconds (CLOCK_MONOTONIC).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board.h"
#include "fw_app.h"

#define SLOT_SIZE 0x00080000u
#define CFG_SIZE 0x00001000u
#define SLOTS_BYTES ((size_t)BOARD_N_SLOTS * SLOT_SIZE)

static int listen_fd = -1, io_fd = -1, pty_mode = 0;
static uint8_t *flash_mem;
static size_t flash_bytes;
static jmp_buf reset_point;

/* ---- --power-cut: a flash programming budget (host only, see the header) ------------- */
#define POWER_CUT_EXIT 86
static int pc_on;
static unsigned long long pc_budget, pc_used;

/* Flash units of n that may still happen before the power fails (all n without the option). */
static uint32_t pc_take(uint32_t n)
{
    unsigned long long left;
    if (!pc_on) return n;
    left = pc_budget - pc_used;
    if (left < n) n = (uint32_t)left;
    pc_used += n;
    return n;
}

/* The power fails: what reached the flash stays, nothing else runs. */
static void pc_cut(void)
{
    msync(flash_mem, flash_bytes, MS_SYNC);
    fprintf(stderr, "gaitedge-fw-host: power cut at flash unit %llu\n", pc_used);
    _exit(POWER_CUT_EXIT);
}

static void flash_erase(uint8_t *p, size_t n)
{
    if (pc_take(1) == 0) {
        memset(p, 0xFF, n / 2); /* the erase got half way */
        pc_cut();
    }
    memset(p, 0xFF, n);
    msync(flash_mem, flash_bytes, MS_SYNC);
    if (pc_on) fprintf(stderr, "gaitedge-fw-host: power-cut: %llu flash units used\n", pc_used);
}

static void flash_program(uint8_t *p, const void *data, uint32_t n)
{
    uint32_t ok = pc_take(n);
    memcpy(p, data, ok);
    if (ok < n) pc_cut();
    msync(flash_mem, flash_bytes, MS_SYNC);
    if (pc_on) fprintf(stderr, "gaitedge-fw-host: power-cut: %llu flash units used\n", pc_used);
}

static void die(const char *what)
{
    fprintf(stderr, "gaitedge-fw-host: %s: %s\n", what, strerror(errno));
    exit(1);
}

void board_init(void) {}
const char *board_name(void) { return "host"; }

static void drop_client(void)
{
    if (io_fd >= 0 && !pty_mode) {
        close(io_fd);
        io_fd = -1;
    }
}

void board_uart_write(const uint8_t *data, uint32_t n)
{
    while (n > 0 && io_fd >= 0) {
        ssize_t w = write(io_fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd p = {io_fd, POLLOUT, 0};
                poll(&p, 1, 100);
                continue;
            }
            drop_client(); /* unplugged: bytes are lost, as on a real UART */
            return;
        }
        data += w;
        n -= (uint32_t)w;
    }
}

uint32_t board_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

uint32_t board_tick_hz(void) { return 1000000u; }
void board_irq_disable(void) {}
void board_irq_enable(void) {}

/* "Interrupt": wait for input (or a client), hand received bytes to the application. */
void board_idle(void)
{
    uint8_t buf[4096];
    struct pollfd p;
    ssize_t n, i;
    if (io_fd < 0) {
        int one = 1;
        io_fd = accept(listen_fd, NULL, NULL);
        if (io_fd < 0) return;
        setsockopt(io_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    p.fd = io_fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 1000) <= 0) return;
    n = read(io_fd, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
        if (pty_mode) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL); /* no reader on the other side yet */
            return;
        }
        drop_client();
        return;
    }
    for (i = 0; i < n; i++) fw_uart_rx(buf[i]);
}

uint32_t board_slot_size(void) { return SLOT_SIZE; }
const uint8_t *board_slot_addr(int slot) { return flash_mem + (size_t)slot * SLOT_SIZE; }

int board_slot_erase(int slot)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS) return -1;
    flash_erase(flash_mem + (size_t)slot * SLOT_SIZE, SLOT_SIZE);
    return 0;
}

int board_slot_write(int slot, uint32_t offset, const void *data, uint32_t n)
{
    if (slot < 0 || slot >= BOARD_N_SLOTS || offset > SLOT_SIZE || n > SLOT_SIZE - offset) return -1;
    flash_program(flash_mem + (size_t)slot * SLOT_SIZE + offset, data, n);
    return 0;
}

uint32_t board_cfg_size(void) { return CFG_SIZE; }
const uint8_t *board_cfg_addr(int page) { return flash_mem + SLOTS_BYTES + (size_t)page * CFG_SIZE; }

int board_cfg_erase(int page)
{
    if (page < 0 || page >= BOARD_N_CFG) return -1;
    flash_erase(flash_mem + SLOTS_BYTES + (size_t)page * CFG_SIZE, CFG_SIZE);
    return 0;
}

int board_cfg_write(int page, uint32_t offset, const void *data, uint32_t n)
{
    if (page < 0 || page >= BOARD_N_CFG || offset > CFG_SIZE || n > CFG_SIZE - offset) return -1;
    flash_program(flash_mem + SLOTS_BYTES + (size_t)page * CFG_SIZE + offset, data, n);
    return 0;
}

void board_reset(void) { longjmp(reset_point, 1); }

static void open_flash(const char *path)
{
    flash_bytes = SLOTS_BYTES + (size_t)BOARD_N_CFG * CFG_SIZE;
    if (path == NULL) {
        flash_mem = malloc(flash_bytes);
        if (!flash_mem) die("malloc");
        memset(flash_mem, 0xFF, flash_bytes);
        return;
    }
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (fd < 0) die(path);
    if (fstat(fd, &st) != 0) die(path);
    if ((size_t)st.st_size == SLOTS_BYTES) { /* slots only (older firmware): append erased settings pages */
        uint8_t ff[CFG_SIZE];
        int k;
        memset(ff, 0xFF, sizeof ff);
        if (lseek(fd, 0, SEEK_END) < 0) die(path);
        for (k = 0; k < BOARD_N_CFG; k++)
            if (write(fd, ff, sizeof ff) != (ssize_t)sizeof ff) die(path);
    } else if ((size_t)st.st_size != flash_bytes) { /* new (or foreign) file: erased flash */
        uint8_t ff[4096];
        size_t k;
        memset(ff, 0xFF, sizeof ff);
        if (ftruncate(fd, 0) != 0) die(path);
        for (k = 0; k < flash_bytes; k += sizeof ff)
            if (write(fd, ff, sizeof ff) != (ssize_t)sizeof ff) die(path);
    }
    flash_mem = mmap(NULL, flash_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (flash_mem == MAP_FAILED) die("mmap");
    close(fd);
}

static void open_tcp(int port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int one = 1;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0) die("socket");
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
    if (listen(listen_fd, 1) != 0) die("listen");
    getsockname(listen_fd, (struct sockaddr *)&a, &al);
    printf("serial socket://127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
}

static void open_pty(void)
{
    struct termios t;
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0) die("pty");
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
    io_fd = fd;
    pty_mode = 1;
    printf("serial %s\n", ptsname(fd));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int i, port = -1, pty = 0;
    const char *flash = NULL;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pty") == 0)
            pty = 1;
        else if (strcmp(argv[i], "--flash") == 0 && i + 1 < argc)
            flash = argv[++i];
        else if (strcmp(argv[i], "--power-cut") == 0 && i + 1 < argc && argv[i + 1][0] >= '0' &&
                 argv[i + 1][0] <= '9') {
            pc_on = 1;
            pc_budget = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--tcp PORT | --pty] [--flash FILE] [--power-cut N]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    open_flash(flash);
    if (pty)
        open_pty();
    else
        open_tcp(port < 0 ? 0 : port);
    if (!pty) { /* like QEMU's wait=on: start once the first client is there (it sees the BOOT frame) */
        while (io_fd < 0) board_idle();
    }
    setjmp(reset_point);
    fw_init();
    for (;;) fw_poll();
}
