/*
 * true: the program figures 1 and 8 start under each init. Static with musl, so that its own
 * start-up is a few page faults and no dynamic loader: the init's cost is then most of what
 * a run takes, and the run-to-run spread that /bin/true's loader adds (it maps the C library
 * and relocates it, a good hundred microseconds that vary) does not bury the differences
 * between inits. Built by the benchmark's preparation step beside minimal-init.
 */
int main(void) {
	return 0;
}
