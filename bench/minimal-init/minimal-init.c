/*
 * minimal-init: the least a container init can do, as the benchmark's floor. Block every
 * signal, vfork, run the program with the mask it had, then take signals one at a time:
 * SIGCHLD reaps every exited child (and ends with the program's status once the program is
 * one of them), anything else goes on to the program. No options, no logging, no grace
 * period, no process group: what is left of start-up and exit is what the kernel cannot
 * avoid (exec, spawn, exec again, exit, wait) and the C library's own few instructions.
 *
 *   minimal-init [--] PROGRAM [ARGS...]    minimal-init --version
 *
 * Built static with musl (`musl-gcc -static -Os`) by the benchmark's preparation step.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* vfork, not fork: the child borrows this process's memory until it execs, so no page table
 * is copied and neither side takes a copy-on-write fault; the cheapest spawn there is. The
 * child only restores the mask and execs, as vfork allows. */
static pid_t spawn(char **program, const sigset_t *mask) {
	pid_t child = vfork();
	if (child == 0) {
		sigprocmask(SIG_SETMASK, mask, NULL);
		execvp(program[0], program);
		_exit(127);
	}
	return child;
}

int main(int argc, char **argv) {
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		static const char version[] = "minimal-init 1\n";
		return write(STDOUT_FILENO, version, sizeof version - 1) == sizeof version - 1 ? 0 : 1;
	}
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc)
		return 2;

	/* Before the spawn, so that no signal sent to PID 1 is dropped for lack of a handler. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);

	pid_t child = spawn(argv + first, &old);
	if (child < 0)
		return 125;
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		/* SIGCHLDs coalesce: one may stand for many exits. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == child)
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
}
