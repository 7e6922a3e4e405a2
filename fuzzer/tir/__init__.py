"""Low-level TVM fuzzing: TIR seeds, IR mutation, schedule mutation, pass-pipeline mutation.

A test takes a seed PrimFunc (from TE, TVMScript text or a legalized Relax graph),
mutates its IR, and builds it several ways in an isolated worker: once as it is with
the default pipeline (the reference) and once per variant, each with a random
``tvm.s_tir.Schedule`` trace and a mutated pass pipeline. Variants must agree with
the reference; unmutated TE seeds must also agree with numpy. The parent process
(``fuzzer.tir.campaign``) never imports TVM: cases are plain data.
"""
