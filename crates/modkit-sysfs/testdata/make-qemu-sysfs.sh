#!/bin/sh
# Writes qemu/: a fake sysfs shaped like the one of a QEMU q35-less (i440FX) guest with a
# virtio disk (and a partition), virtio network, a VGA card, an xHCI controller with a USB
# stick, platform devices (serial8250, i8042 with a serio port), /dev/null, and two kinds of
# symlink loop. The files are what Linux 6.1 shows for these devices, trimmed to what matters.
# Run from this directory; the result is committed.
set -eu
rm -rf qemu
mkdir qemu && cd qemu

# file PATH CONTENT...: write a file, creating its directory
file() { p=$1; shift; mkdir -p "$(dirname "$p")"; printf '%s\n' "$@" > "$p"; }
link() { mkdir -p "$(dirname "$2")"; ln -s "$1" "$2"; }

P=devices/pci0000:00
file $P/uevent ''
: > $P/uevent

# pci DIR VENDOR DEVICE CLASS DRIVER
pci() {
  d=$P/$1 v=$2 dv=$3 c=$4 drv=$5
  alias=$(printf 'pci:v0000%sd0000%ssv00001AF4sd00001100bc%ssc%si%s' \
    "$(echo "$v" | tr a-f A-F)" "$(echo "$dv" | tr a-f A-F)" \
    "$(echo "$c" | cut -c1-2 | tr a-f A-F)" "$(echo "$c" | cut -c3-4 | tr a-f A-F)" \
    "$(echo "$c" | cut -c5-6 | tr a-f A-F)")
  file $d/vendor 0x$v
  file $d/device 0x$dv
  file $d/class 0x$c
  file $d/subsystem_vendor 0x1af4
  file $d/subsystem_device 0x1100
  file $d/modalias "$alias"
  if [ -n "$drv" ]; then
    file $d/uevent "DRIVER=$drv" "PCI_CLASS=$(echo $c | sed 's/^0*//' | tr a-f A-F)" \
      "PCI_ID=$(echo $v:$dv | tr a-f A-F)" "PCI_SUBSYS_ID=1AF4:1100" "PCI_SLOT_NAME=$1" "MODALIAS=$alias"
    link ../../../bus/pci/drivers/$drv $d/driver
    link ../../../../devices/pci0000:00/$1 bus/pci/drivers/$drv/$1
  else
    file $d/uevent "PCI_CLASS=$(echo $c | sed 's/^0*//' | tr a-f A-F)" \
      "PCI_ID=$(echo $v:$dv | tr a-f A-F)" "PCI_SUBSYS_ID=1AF4:1100" "PCI_SLOT_NAME=$1" "MODALIAS=$alias"
  fi
  link ../../../bus/pci $d/subsystem
  link ../../../devices/pci0000:00/$1 bus/pci/devices/$1
}

pci 0000:00:00.0 8086 1237 060000 ''
pci 0000:00:02.0 1234 1111 030000 bochs-drm
pci 0000:00:03.0 1af4 1000 020000 virtio-pci
pci 0000:00:04.0 1af4 1001 010000 virtio-pci
pci 0000:00:05.0 1b36 000d 0c0330 xhci_hcd

# virtio network: the virtio device, then the interface (no modalias).
V=$P/0000:00:03.0/virtio0
file $V/uevent DRIVER=virtio_net MODALIAS=virtio:d00000001v00001AF4
file $V/modalias virtio:d00000001v00001AF4
file $V/net/eth0/uevent INTERFACE=eth0 IFINDEX=2

# virtio disk vda (254:0) and its partition vda1 (254:1).
V=$P/0000:00:04.0/virtio1
file $V/uevent DRIVER=virtio_blk MODALIAS=virtio:d00000002v00001AF4
file $V/modalias virtio:d00000002v00001AF4
link ../../../../bus/virtio $V/subsystem
file $V/block/vda/uevent MAJOR=254 MINOR=0 DEVNAME=vda DEVTYPE=disk DISKSEQ=1
file $V/block/vda/dev 254:0
# Links back up the tree, as real sysfs has: a walker that followed them would loop.
link ../../../virtio1 $V/block/vda/device
link ../../../../../../class/block $V/block/vda/subsystem
file $V/block/vda/vda1/uevent MAJOR=254 MINOR=1 DEVNAME=vda1 DEVTYPE=partition PARTN=1
file $V/block/vda/vda1/dev 254:1
link ../../../../../../../class/block $V/block/vda/vda1/subsystem

# xHCI root hub and a USB stick: interfaces have modaliases, usb_device nodes do not.
U=$P/0000:00:05.0/usb1
file $U/uevent MAJOR=189 MINOR=0 DEVNAME=bus/usb/001/001 DEVTYPE=usb_device DRIVER=usb \
  PRODUCT=1d6b/2/601 TYPE=9/0/1 BUSNUM=001 DEVNUM=001
file $U/1-0:1.0/uevent DEVTYPE=usb_interface DRIVER=hub PRODUCT=1d6b/2/601 TYPE=9/0/1 \
  INTERFACE=9/0/0 MODALIAS=usb:v1D6Bp0002d0601dc09dsc00dp01ic09isc00ip00in00
file $U/1-0:1.0/modalias usb:v1D6Bp0002d0601dc09dsc00dp01ic09isc00ip00in00
file $U/1-1/uevent MAJOR=189 MINOR=1 DEVNAME=bus/usb/001/002 DEVTYPE=usb_device DRIVER=usb \
  PRODUCT=46f4/1/0 TYPE=0/0/0 BUSNUM=001 DEVNUM=002
file $U/1-1/1-1:1.0/uevent DEVTYPE=usb_interface DRIVER=usb-storage PRODUCT=46f4/1/0 \
  TYPE=0/0/0 INTERFACE=8/6/80 MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00
file $U/1-1/1-1:1.0/modalias usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00
file $U/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/uevent DEVTYPE=scsi_device DRIVER=sd \
  MODALIAS=scsi:t-0x00
file $U/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/uevent MAJOR=8 MINOR=0 DEVNAME=sda DEVTYPE=disk
file $U/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/dev 8:0

# Platform devices: a serial port with its tty (4:64), and i8042 with a serio port.
file devices/platform/uevent ''
: > devices/platform/uevent
file devices/platform/serial8250/uevent DRIVER=serial8250 MODALIAS=platform:serial8250
file devices/platform/serial8250/modalias platform:serial8250
file devices/platform/serial8250/tty/ttyS0/uevent MAJOR=4 MINOR=64 DEVNAME=ttyS0
file devices/platform/serial8250/tty/ttyS0/dev 4:64
file devices/platform/i8042/uevent DRIVER=i8042 MODALIAS=platform:i8042
file devices/platform/i8042/serio0/uevent DRIVER=atkbd SERIO_TYPE=01 SERIO_PROTO=00 \
  SERIO_ID=00 SERIO_EXTRA=00 MODALIAS=serio:ty01pr00id00ex00
file devices/platform/i8042/serio0/modalias serio:ty01pr00id00ex00

# A character device without any modalias on the way up: /dev/null (1:3).
file devices/virtual/mem/null/uevent MAJOR=1 MINOR=3 DEVNAME=null DEVMODE=0666
file devices/virtual/mem/null/dev 1:3

# /sys/dev: relative links to the canonical device directories.
link ../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda dev/block/254:0
link ../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1 dev/block/254:1
link ../../devices/pci0000:00/0000:00:05.0/usb1/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/block/sda dev/block/8:0
link ../../devices/platform/serial8250/tty/ttyS0 dev/char/4:64
link ../../devices/virtual/mem/null dev/char/1:3
# An absolute link, as a chroot would see it: resolved inside the root.
link /sys/devices/platform/i8042/serio0 dev/char/13:64
link ../../devices/pci0000:00/0000:00:05.0/usb1 dev/char/189:0

# Symlink loops: two links that point at each other, and one that points at itself.
link 10:201 dev/char/10:200
link 10:200 dev/char/10:201
link 10:202 dev/char/10:202
# A link out of the root.
link ../../../../../../../../../../../etc dev/char/10:203
link /etc dev/char/10:204
# A link to something that is not a device.
link ../../bus/pci dev/char/10:205

mkdir -p class/block
link ../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda class/block/vda
link ../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1 class/block/vda1
mkdir -p bus/virtio/devices
link ../../../devices/pci0000:00/0000:00:03.0/virtio0 bus/virtio/devices/virtio0
link ../../../devices/pci0000:00/0000:00:04.0/virtio1 bus/virtio/devices/virtio1
