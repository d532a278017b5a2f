/*
 * pause: the first process (PID 1) of every kubox pod sandbox.
 *
 * It holds the sandbox's namespaces open and does nothing else: it sleeps in
 * pause(), reaps any zombie that is re-parented to it, and exits 0 when told
 * to stop with SIGINT or SIGTERM. "pause -v" prints its version.
 *
 * Built static (musl-gcc -static -Os -s) by scripts/build-payload.sh.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAUSE_VERSION
#define PAUSE_VERSION "1.0"
#endif

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	int saved = errno;

	(void)sig;
	/* One SIGCHLD may stand for several children: reap all that exited. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static int handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0) {
		fprintf(stderr, "pause: sigaction(%d): %s\n", sig, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0) {
			printf("pause (kubox) %s\n", PAUSE_VERSION);
			return 0;
		}
		fprintf(stderr, "pause: unknown argument %s (only -v is known)\n", argv[i]);
		return 2;
	}

	if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0 ||
	    handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0)
		return 1;

	for (;;)
		pause();
	/* not reached */
	return 1;
}
