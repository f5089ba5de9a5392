"""Progress of long calls, delivered through the library's progress hook.

progress=None (the default): a tqdm bar when tqdm is installed and stderr is a terminal, silent
otherwise. False: silent. True: tqdm if installed, else a plain line on stderr. A callable:
called as f(label, done, total, extra) at most 10 times a second and once at the end.
An exception raised by the callable does not stop the C call; it is re-raised after it."""
import sys

from ._ffi import ffi


def _tqdm():
    try:
        from tqdm import tqdm
        return tqdm
    except ImportError:
        return None


class _Bar:
    def __init__(self, tqdm):
        self.tqdm, self.bar = tqdm, None

    def __call__(self, label, done, total, extra):
        if self.tqdm is None:
            sys.stderr.write("\r%s %3.0f%% %s" % (label, 100.0 * done / max(total, 1), extra or ""))
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            return
        if self.bar is None:
            self.bar = self.tqdm(total=total, desc=label, unit="sample", leave=False)
        self.bar.n = done
        if extra:
            self.bar.set_postfix_str(extra, refresh=False)
        self.bar.refresh()
        if done >= total:
            self.bar.close()
            self.bar = None


class Hook:
    """Holds the C callback for the duration of one call: `with Hook(progress) as h:` then put
    h.fn / h.ctx into the options."""

    def __init__(self, progress):
        if progress is None:
            t = _tqdm()
            progress = _Bar(t) if t is not None and sys.stderr.isatty() else False
        elif progress is True:
            progress = _Bar(_tqdm())
        self.user = progress if progress else None
        self.error = None
        self.fn, self.ctx = ffi.NULL, ffi.NULL
        if self.user is not None:
            self._cb = ffi.callback("ecp_progress_fn", self._call)
            self.fn = self._cb

    def _call(self, ctx, label, done, total, extra):
        if self.error is not None:
            return
        try:
            self.user(ffi.string(label).decode(), int(done), int(total),
                      ffi.string(extra).decode() if extra != ffi.NULL else "")
        except BaseException as e:  # raised again once the C call returns
            self.error = e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.error is not None and exc[0] is None:
            raise self.error
