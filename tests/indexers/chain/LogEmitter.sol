// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// Test-only: emits whatever log the calldata describes, `repeat` times, so tests can put any
/// pipeline event (real topic0 and data layout) at any address and reorg it.
/// calldata: [topicCount:1][repeat:2][topics: 32 * topicCount][data...]; the second topic (the first indexed argument) grows by 1 per repeat.
contract LogEmitter {
    fallback() external {
        assembly {
            let n := shr(248, calldataload(0))
            let repeat := shr(240, calldataload(1))
            let off := add(3, mul(n, 32))
            let size := sub(calldatasize(), off)
            calldatacopy(0, off, size)
            let t1 := calldataload(3)
            let t2 := calldataload(35)
            for { let i := 0 } lt(i, repeat) { i := add(i, 1) } {
                switch n
                case 0 { log0(0, size) }
                case 1 { log1(0, size, t1) }
                case 2 { log2(0, size, t1, t2) }
                case 3 { log3(0, size, t1, t2, calldataload(67)) }
                default { log4(0, size, t1, t2, calldataload(67), calldataload(99)) }
                t2 := add(t2, 1)
            }
        }
    }
}
