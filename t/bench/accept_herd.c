/* accept_herd MODE: 4 processes wait for one shared listening socket, the parent connects
 * 64 clients 2 ms apart, each process prints the clients it accepted and its voluntary
 * context switches. MODE bits: 1 = EPOLLEXCLUSIVE, 2 = that epoll nested in another one
 * (as under Asio's reactor), 4 = re-register after each wake-up. The measurement behind
 * src/os/accept_spread.cc's design (README.md, Performance); loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kProcs = 4, kClients = 64 };

static void waiter(int index, int mode, int listener) {
    int ep = epoll_create1(0), waitfd = ep;
    struct epoll_event ev = {0};
    ev.events = EPOLLIN | ((mode & 1) ? EPOLLEXCLUSIVE : EPOLLET);
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    if (mode & 2) {
        struct epoll_event outer_ev = {0};
        outer_ev.events = EPOLLIN | EPOLLET;
        waitfd = epoll_create1(0);
        epoll_ctl(waitfd, EPOLL_CTL_ADD, ep, &outer_ev);
    }
    int accepted = 0;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    for (;;) {
        struct epoll_event out[4];
        if (epoll_wait(waitfd, out, 4, 2000) <= 0) break; /* 2 s quiet: done */
        if (mode & 2) epoll_wait(ep, out, 4, 0);
        for (int c; (c = accept(listener, NULL, NULL)) >= 0; accepted++) close(c);
        if (mode & 4) {
            epoll_ctl(ep, EPOLL_CTL_DEL, listener, NULL);
            epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    printf("process %d: accepted %d, voluntary switches %ld\n", index, accepted,
           r1.ru_nvcsw - r0.ru_nvcsw);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char** argv) {
    int mode = argc > 1 ? atoi(argv[1]) : 5;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener, (struct sockaddr*)&addr, len) != 0 || listen(listener, 4096) != 0 ||
        getsockname(listener, (struct sockaddr*)&addr, &len) != 0) {
        perror("listen");
        return 1;
    }
    for (int i = 0; i < kProcs; i++) {
        if (fork() == 0) waiter(i, mode, listener);
    }
    usleep(200000);
    for (int k = 0; k < kClients; k++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr*)&addr, len) != 0) perror("connect");
        usleep(2000);
        close(s);
    }
    while (wait(NULL) > 0) {
    }
    return 0;
}
