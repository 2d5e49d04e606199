"""Tiny WASI preview 1 modules written in WAT for the wasm runtime's tests, compiled with
wasmtime's ``wat2wasm``. They share a prelude: the WASI imports and helpers to print C
strings, read argv and environ, parse a number and compare strings.

Memory map (one 64 KiB page): 0 iovec, 8 nwritten, 16 argc, 20 argv size, 24 environ count,
28 environ size, 32 prestat, 40 opened fd, 44 nread, 64 "\\n", 80.. constant strings,
1024 argv pointers, 2048 argv bytes, 4096 environ pointers, 5120 environ bytes,
16384 preopen name, 20480 file contents, 24576 poll subscription, 24640 poll event.
"""

from __future__ import annotations

import wasmtime

__all__ = [
    "ECHO",
    "GROWER",
    "HELLO",
    "MISSING_IMPORT",
    "READER",
    "SLEEPER",
    "TICKER",
    "TRAP",
    "compile_wat",
]

_PRELUDE = r"""
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\n")
  (data (i32.const 80) "write allowed\00")
  (data (i32.const 96) "write refused\00")
  (data (i32.const 112) "written.txt\00")
  (data (i32.const 128) "no such preopen\00")
  (data (i32.const 144) "open failed\00")
  (data (i32.const 160) "hello\00")
  (data (i32.const 168) "tick\00")
  (data (i32.const 176) "grew\00")
  (data (i32.const 184) "refused\00")

  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $write (param $fd i32) (param $p i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $line (param $p i32)
    (call $write (i32.const 1) (local.get $p) (call $strlen (local.get $p)))
    (call $write (i32.const 1) (i32.const 64) (i32.const 1)))

  (func $argc (result i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 2048)))
    (i32.load (i32.const 16)))

  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 4)))))

  (func $atoi (param $p i32) (result i32) (local $n i32) (local $c i32)
    (block $done
      (loop $next
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.lt_u (local.get $c) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 57)))
        (local.set $n
          (i32.add (i32.mul (local.get $n) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ
          (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))
"""


def _module(body: str) -> str:
    return f"(module {_PRELUDE}\n{body})"


HELLO = _module(
    r"""
  ;; "hello", then exit with the number in argv[1] (returning from _start when there is none).
  (func (export "_start") (local $argc i32)
    (local.set $argc (call $argc))
    (call $line (i32.const 160))
    (if (i32.gt_u (local.get $argc) (i32.const 1))
      (then (call $proc_exit (call $atoi (call $arg (i32.const 1)))))))
"""
)

ECHO = _module(
    r"""
  ;; Every argument on a line, then every environment variable (NAME=value) on a line.
  (func (export "_start") (local $argc i32) (local $i i32) (local $count i32)
    (local.set $argc (call $argc))
    (block $args_done
      (loop $args
        (br_if $args_done (i32.ge_u (local.get $i) (local.get $argc)))
        (call $line (call $arg (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $args)))
    (drop (call $environ_sizes_get (i32.const 24) (i32.const 28)))
    (drop (call $environ_get (i32.const 4096) (i32.const 5120)))
    (local.set $count (i32.load (i32.const 24)))
    (local.set $i (i32.const 0))
    (block $env_done
      (loop $env
        (br_if $env_done (i32.ge_u (local.get $i) (local.get $count)))
        (call $line
          (i32.load (i32.add (i32.const 4096) (i32.mul (local.get $i) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $env))))
"""
)

READER = _module(
    r"""
  ;; argv[1] names a preopened directory, argv[2] a file in it: print the file, then try to
  ;; create written.txt there and say whether that was allowed.
  (func (export "_start") (local $fd i32) (local $len i32) (local $want i32) (local $wlen i32)
    (drop (call $argc))
    (local.set $want (call $arg (i32.const 1)))
    (local.set $wlen (call $strlen (local.get $want)))
    (local.set $fd (i32.const 3))
    (block $found
      (loop $next
        (if (call $fd_prestat_get (local.get $fd) (i32.const 32))
          (then (call $line (i32.const 128)) (call $proc_exit (i32.const 2))))
        (local.set $len (i32.load (i32.const 36)))
        (drop (call $fd_prestat_dir_name (local.get $fd) (i32.const 16384) (local.get $len)))
        (br_if $found
          (i32.and
            (i32.eq (local.get $len) (local.get $wlen))
            (call $memeq (i32.const 16384) (local.get $want) (local.get $len))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $next)))
    ;; path_open(dir, dirflags, path, len, oflags, rights (fd_read), inheriting, fdflags, &fd)
    (if (call $path_open (local.get $fd) (i32.const 0)
          (call $arg (i32.const 2)) (call $strlen (call $arg (i32.const 2)))
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 40))
      (then (call $line (i32.const 144)) (call $proc_exit (i32.const 3))))
    (i32.store (i32.const 0) (i32.const 20480))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $fd_read (i32.load (i32.const 40)) (i32.const 0) (i32.const 1) (i32.const 44)))
    (call $write (i32.const 1) (i32.const 20480) (i32.load (i32.const 44)))
    ;; O_CREAT|O_TRUNC (9), rights fd_write (64)
    (if (call $path_open (local.get $fd) (i32.const 0) (i32.const 112) (i32.const 11)
          (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 40))
      (then (call $line (i32.const 96)))
      (else
        (call $write (i32.load (i32.const 40)) (i32.const 160) (i32.const 5))
        (call $line (i32.const 80)))))
"""
)

TICKER = _module(
    r"""
  ;; "tick", then spin forever (no host calls: only epoch interruption can stop it).
  (func (export "_start")
    (call $line (i32.const 168))
    (loop $spin (br $spin)))
"""
)

SLEEPER = _module(
    r"""
  ;; Sleep 1000 s in poll_oneoff: a host call, which epoch interruption does not reach.
  (func (export "_start")
    (i32.store8 (i32.add (i32.const 24576) (i32.const 8)) (i32.const 0))
    (i32.store (i32.add (i32.const 24576) (i32.const 16)) (i32.const 1))
    (i64.store (i32.add (i32.const 24576) (i32.const 24)) (i64.const 1000000000000))
    (call $line (i32.const 168))
    (drop (call $poll_oneoff (i32.const 24576) (i32.const 24640) (i32.const 1) (i32.const 8))))
"""
)

TRAP = _module(
    r"""
  (func (export "_start")
    (call $line (i32.const 160))
    unreachable)
"""
)

GROWER = _module(
    r"""
  ;; Grow memory by 16 pages (1 MiB): "grew", or "refused" and exit 1.
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
      (then (call $line (i32.const 184)) (call $proc_exit (i32.const 1))))
    (call $line (i32.const 176)))
"""
)

MISSING_IMPORT = r"""
(module
  (import "env" "missing" (func $missing))
  (func (export "_start") (call $missing)))
"""


def compile_wat(source: str) -> bytes:
    return bytes(wasmtime.wat2wasm(source))
