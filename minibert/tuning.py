"""Every constant that tunes speed, not numbers, with the measurement that chose it. None of them changes a result
beyond rounding (and most not even that): tests/test_speed_paths.py and tests/test_threads.py hold each fast path
to its plain form. The figures are from the hosts named in benchmarks/README.md (2-core KVM guests).
"""

# ---- attention (attention.py) ----
# Scores per (sequence, heads) block: 2^16 float32 scores are 256 KiB, within L2; the fastest measured of 2^15-2^17.
ATTENTION_BLOCK_SCORES = 1 << 16

# ---- a batch on several threads (batch_threads.py) ----
# A batch is cut into slices of at least this many multiply-adds in the encoder's products (tokens x layers x
# (4 H^2 + 2 H I)). Two threads that each run a small slice wait on the GIL for each other between NumPy's many short
# calls, and BLAS's threads sharing each product of the whole batch did better: MiniLM 8x32 (slices of 1.4 G) on two
# cores 47.6 against 51.4 ms, while MiniLM 16x32 and 4x128 (2.7 G) and bert-base 8x32 (10.9 G) gain 1.12-1.25x from
# slices (Zen 4). (It was 64 tokens a slice: a slice's handoff to a sleeping pool thread costs ~130 us.)
MIN_SLICE_MACS = 2 << 30
# From this many tokens on (the call's, B x S), every layer is computed in parts (parallel.fixed_parts()),
# heads and intermediate features (layer_parts.py), on any number of cores and threads; a call that is not cut into
# slices shares its parts among its threads, BLAS on one. Against what ran before (below 256 tokens the products on
# BLAS's two threads and the rest on one, from 256 one handoff per product and step), the whole forward pass on 2 cores,
# old and new trees in alternating pinned processes (6 rounds, Zen 4, with one part per core): MiniLM 1x128 0.981, 8x32
# 0.872, 1x512 0.879, 32x128 (two slices, each its parts on one thread) 0.985; bert-base 1x128 0.931, 1x512 0.978, 8x128
# 1.016. Below it the two handoffs per layer (~130 us each to a sleeping thread) cost more than the second core gives:
# in a prototype, MiniLM 1x96 1.016, 1x64 1.25, 1x32 1.53; bert-base 1x32 1.07.
LAYER_IN_PARTS_TOKENS = 128
# The parts of a layer: as many as the machine has CPUs (os.cpu_count(), not the process's cores or its thread count),
# at most MAX_LAYER_PARTS, so that on one machine no core count or thread count changes a bit of the outputs (with one
# part per core of the process, a 1-core process's outputs differed from a 2-core one's by up to 1.6e-6 of a
# bert-base-sized pooler). Each part's products are its own, never joined with another part's on the same thread: a
# BLAS kernel may round a block of output columns otherwise than a wider product (OpenBLAS's Haswell kernel does; its
# SkylakeX kernel did not), and joined parts made the outputs depend on the thread count there. Four parts on every
# machine, each thread's parts joined, cost on one core against whole layers MiniLM 8x32 1.024, 1x128 1.001, 1x512
# 1.017; with each part's products its own, against joined, 1.037, 1.036, 1.017 on one core and 1.033, 1.082, 1.022 on
# two (Zen 4). Two parts, each its own (a 2-CPU machine), against four joined: 1.013, 1.007, 0.981 on one core and
# 0.963, 1.030, 1.007 on two. Four threads at most share a single sequence's layer.
MAX_LAYER_PARTS = 4
# Where BLAS's threads would change a product's bits (kernels not in parallel.SPLIT_KEEPS_BITS), a call below
# LAYER_IN_PARTS_TOKENS still has its layers in parts, so that a second core helps it without changing a bit; but a
# call of fewer multiply-adds than this in the encoder's products (MiniLM up to 25 tokens) runs whole layers on one
# thread instead: its parts' extra calls cost more than the second core gives. Parts against whole layers on one
# thread, OpenBLAS's Haswell kernel (Zen 4), alternating pinned processes: one core MiniLM 1x16 1.104, 1x32 1.089, 1x64
# 1.051, bert-base 1x16 1.055; two cores MiniLM 1x8 1.090, 1x16 0.999, 1x24 1.018, 1x32 0.830, 1x64 0.787, bert-base
# 1x16 0.658, 1x64 0.584.
MIN_LAYER_PARTS_MACS = 1 << 28

# ---- products (functional.linear) ----
# Below this many rows (tokens), linear computes W xᵀ: OpenBLAS's SkylakeX kernel is up to ~2x faster at it with few
# rows, for a row-major W (16 rows of 384 -> 1536: 128 against 302 us, Zen 4) and for the encoder's column-major ones
# (checkpoint.load_order), which x Wᵀ reads as Wᵀ as stored: on the Intel host (Xeon, family 6 model 167), 384 ->
# 1536 at 4 / 16 / 32 rows 189 / 279 / 415 against 423 / 542 / 700 us, and the whole forward pass (alternating pinned
# processes, 4 rounds) MiniLM 1x16 0.88x on one core, 0.77x on two, 1x32 0.84x and 0.84x, bert-base 1x16 0.91x and
# 0.87x. From 64 rows on x Wᵀ is as fast or faster (the transposition back costs what W xᵀ gains): 200 instead of 64
# gave MiniLM 1x64 0.97-0.99x, 1x128 1.02x / 0.99x, bert-base 1x128 0.99x / 1.00x on the Intel host.
FEW_ROWS = 64
# Below this many rows, a float32 product with a row-major W (the encoder's on Intel's CPUs, every head's) goes to
# OpenBLAS's small-matrix kernels where NumPy's BLAS has them (parallel.SMALL_MATRIX_KERNELS): W cut into blocks of
# output features small enough for them, which read W as stored instead of packing it first. Alone, cold weights,
# against W xᵀ on the Intel host, at 16 rows: 384 -> 1536 0.76x, 1536 -> 384 0.76x, 384 -> 384 0.77x, 768 -> 3072
# 0.72x, 3072 -> 768 0.76x, 768 -> 768 0.82x; at 8 rows 0.57-0.75x, at 2 rows 0.34-0.55x, at 24 rows 0.75-0.94x, at 32
# rows 0.78-1.06x, at 48 rows 0.96-1.14x. On OpenBLAS's Haswell kernel, which has none, the blocks were 0.89-1.16x.
# Only where the call and BLAS each run one thread: the kernels do, and on two cores BLAS's threads sharing an
# ordinary product were faster (MiniLM 1x16 1.35x slower in blocks). The whole forward pass on one core, alternating
# pinned processes: MiniLM 1x16 0.86x, bert-base 1x16 0.79x (Intel host).
SMALL_ROWS = 32
# OpenBLAS's rule for them (SkylakeX, float32, x Wᵀ with W row-major): at most 10^6 multiply-adds a product and at most
# 1,200 outputs (https://github.com/OpenMathLib/OpenBLAS/blob/v0.3.31/kernel/x86_64/sgemm_small_kernel_permit_skylakex.c).
SMALL_MATRIX_MACS = 10**6
SMALL_MATRIX_OUTPUTS = 1200
# A product is shared among threads in parts of at least this many multiply-adds (~0.2 ms of work).
MIN_PART_MACS = 1 << 22

# ---- elementwise work (functional.apply_elementwise, functional._gelu_float32) ----
# Pieces of 1 MiB of float32, the fastest measured; 2^14 pays more Python per element.
CHUNK_ELEMENTS = 1 << 18
# Below this, handing a piece to a thread costs more than it saves (GELU on 16 x 1536: 344 us on two threads
# against 404-498 us in one call).
MIN_PIECE_ELEMENTS = 1 << 13
# The float32 GELU's scratch arrays beside the call's other threads (parallel.beside_others_here): 1 MiB of float32
# each. On two threads each NumPy call takes the GIL back when it returns, and calls of 2^16 elements (~10-30 us) made
# the threads wait for each other: GELU on [512, 1536] took 2.83 ms on two threads against 2.11 on one; with 2^18,
# 1.23 against 1.99 (Zen 4). In the model, MiniLM on two cores 2-4% faster at 8x128, 32x128 and 1x512.
GELU_CHUNK_ELEMENTS = 1 << 18
# ... and in a thread that runs alone (no other thread of its call at work beside it): 4 arrays of 256 KiB stay in L2
# where 1 MiB ones do not, and 2^14 pays more Python per element. On the Intel host (Xeon, family 6 model 167, L2 2
# MiB), GELU alone 3.8-4.0 ns an element in chunks of 2^15-2^17 against 4.8 in 2^18; the whole forward pass against
# 2^18 everywhere (alternating pinned processes, 4 rounds), one core: MiniLM 32x128 0.96x, 8x128 0.95x, 1x512 0.97x,
# bert-base 8x128 0.97x; two cores (2^18 still): 0.98x, 1.00x, 1.00x, 1.00x.
GELU_CHUNK_ELEMENTS_ALONE = 1 << 16

# ---- the encoder's weights in memory (checkpoint.load_order) ----
# The CPU vendors (Linux's vendor_id) on which the encoder's [out, in] weights are loaded row-major, as stored; on any
# other, column-major (Wᵀ C-contiguous). Neither changes a bit on OpenBLAS's SkylakeX and Haswell kernels
# (tests/test_checkpoint_layouts.py), but where row-major weights take linear's small-matrix path (SMALL_ROWS: within
# rounding). On the AMD Zen 4 host, column-major against row-major, the whole forward pass on
# one core: MiniLM 8x32 0.938, 1x128 0.908, 8x128 0.982; bert-base 8x32 0.952, 1x128 0.936 (benchmarks/README.md,
# third pass). On the Intel host (Xeon, family 6 model 167), the other way: row-major against column-major
# (alternating pinned processes, 3-4 rounds), one core / two cores: MiniLM 1x16 0.903 / 0.954, bert-base 1x16 0.946 /
# 0.894, MiniLM 1x128 0.998 / 0.998, 1x512 0.995 / 0.984, 8x32 0.994 / 1.011, 8x128 1.009 / 0.967; in the round
# before, bert-base 1x128 0.98 / 0.94, batches 0.99-1.00 / 0.97-0.98.
ROW_MAJOR_WEIGHTS_VENDORS = frozenset({"GenuineIntel"})

# ---- memory (memory.py) ----
# glibc's mmap threshold: arrays from this size on get pages of their own. 32 MiB is the most glibc's own dynamic
# threshold rises to on 64-bit; below it, a forward pass's temporaries come from the heap and are reused.
MMAP_THRESHOLD_BYTES = 32 << 20
# glibc's trim threshold: free memory at the top of the heap beyond this goes back to the system. Above what a forward
# pass frees at once (MiniLM at 32x128 on one core faulted 6,600 pages per pass back in with glibc's dynamic one).
TRIM_THRESHOLD_BYTES = 512 << 20
