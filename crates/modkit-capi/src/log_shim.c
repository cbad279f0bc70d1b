/*
 * The one piece of C the ABI forces: libkmod's log callback takes a `va_list`, which stable
 * Rust cannot build. Rust calls this variadic function with a format of "%s" and the whole
 * message; it hands the callback the `va_list` of those arguments.
 */
#include <stdarg.h>

typedef void (*modkit_log_fn)(void *data, int priority, const char *file, int line,
			      const char *fn, const char *format, va_list args);

void modkit_capi_call_log(modkit_log_fn log_fn, void *data, int priority, const char *file,
			  int line, const char *fn, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	log_fn(data, priority, file, line, fn, format, args);
	va_end(args);
}
