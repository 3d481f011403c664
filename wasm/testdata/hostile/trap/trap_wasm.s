#include "textflag.h"

// func unreachable()
// UNDEF assembles to the WebAssembly unreachable instruction.
TEXT ·unreachable(SB), NOSPLIT, $0-0
	UNDEF
