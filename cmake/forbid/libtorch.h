// Forced in front of every source of a stage that may not use LibTorch (see
// cmake/stages.cmake): any LibTorch header, or our header that pulls one in,
// then fails to compile with "attempt to use poisoned" and the line that did it.
#pragma GCC poison torch c10
