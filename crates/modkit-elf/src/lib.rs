//! Read what a Linux kernel module file says about itself (being written).
