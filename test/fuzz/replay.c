/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Runs a fuzz target over files, without libFuzzer: the ctest fuzz smoke
 * entries feed it the seed corpora (test/fuzz/seeds/) under the regular
 * (and the ASan/UBSan) build, so every CI run exercises the targets even
 * where clang is not used.  A target that crashes or aborts fails the run.
 *   replay_TARGET FILE|DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long inputs;

static int run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	inputs++;
	return 0;
}

static int run_path(const char *path)
{
	struct stat sb;
	struct dirent **ents;
	int n, rc = 0;

	if (stat(path, &sb)) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(sb.st_mode))
		return run_file(path);
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		perror(path);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char sub[4096];

		if (ents[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
			rc |= run_path(sub);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: %s FILE|DIR...\nRuns the fuzz target over every file given or "
			"found in a directory.\n",
			argv[0]);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 1; i < argc; i++)
		rc |= run_path(argv[i]);
	printf("replay: %lu inputs, %s\n", inputs, rc ? "some unreadable" : "no crash");
	return rc;
}
