/* The reference COLO pair's guest (shared/qemu-colo/guest.S), unchanged below this line. */
/*
 * Tiny COLO probe guest: a multiboot (v1) ELF32 kernel for QEMU's -kernel
 * (loaded at 1 MiB, entered in 32-bit protected mode; no disk at all).
 * PIT at 100 Hz (IRQ0 -> vector 0x20), sti;hlt between ticks.
 * Each tick increments one byte in PAGES_PER_TICK consecutive 4 KiB pages of
 * [REGION_START, REGION_END) (rotating pointer), so it dirties
 * 100*PAGES_PER_TICK pages/s.  Every 100 ticks: "HB <hex count>\r\n" on COM1.
 * COM1 input: 'F' = freeze (cli, busy-poll COM1, no memory writes at all)
 *             'U' = unfreeze.
 */
#ifndef PAGES_PER_TICK
#define PAGES_PER_TICK 40
#endif
#define REGION_START (2 << 20)
#define REGION_END   (130 << 20)
#define COM1 0x3f8
#define IDT  0x6000

        .text
        .globl _start
        .p2align 2
mbhdr:  .long 0x1badb002                /* multiboot v1 magic */
        .long 0                         /* flags */
        .long -0x1badb002               /* checksum */
_start:                                 /* 32-bit protected mode, flat, A20 on */
        cli
        lgdtl gdtdesc
        ljmpl $8, $pm
pm:
        mov $16, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov %eax, %fs
        mov %eax, %gs
        mov $0x7000, %esp
        in $0x92, %al           /* fast A20 */
        or $2, %al
        and $0xfe, %al
        out %al, $0x92
        /* remap PIC: master base 0x20, slave 0x28; unmask only IRQ0 */
        mov $0x11, %al
        out %al, $0x20
        out %al, $0xa0
        mov $0x20, %al
        out %al, $0x21
        mov $0x28, %al
        out %al, $0xa1
        mov $4, %al
        out %al, $0x21
        mov $2, %al
        out %al, $0xa1
        mov $1, %al
        out %al, $0x21
        out %al, $0xa1
        mov $0xfe, %al
        out %al, $0x21
        mov $0xff, %al
        out %al, $0xa1
        /* PIT ch0 rate generator, 1193182/11932 = 100 Hz */
        mov $0x34, %al
        out %al, $0x43
        mov $(11932 & 0xff), %al
        out %al, $0x40
        mov $(11932 >> 8), %al
        out %al, $0x40
        /* IDT gate 0x20 -> irq0 */
        mov $(IDT + 0x20 * 8), %edi
        mov $irq0, %eax
        mov %eax, %edx
        and $0xffff, %eax
        or $0x00080000, %eax            /* selector 8 | offset 15..0 */
        mov %eax, (%edi)
        and $0xffff0000, %edx
        or $0x8e00, %edx                /* offset 31..16 | present 32-bit intr gate */
        mov %edx, 4(%edi)
        lidtl idtdesc
        mov $msg_boot, %edi
        call puts
        mov $REGION_START, %esi
        xor %ebx, %ebx          /* ticks in this second */
        xor %ebp, %ebp          /* heartbeat count */
mainloop:
        sti
        hlt
        cli
        mov $PAGES_PER_TICK, %ecx
1:      incb (%esi)
        add $4096, %esi
        cmp $REGION_END, %esi
        jb 2f
        mov $REGION_START, %esi
2:      loop 1b
        inc %ebx
        cmp $100, %ebx
        jb 3f
        xor %ebx, %ebx
        inc %ebp
        call heartbeat
3:      mov $(COM1 + 5), %dx
        in %dx, %al
        test $1, %al
        jz mainloop
        mov $COM1, %dx
        in %dx, %al
        cmp $'F', %al
        jne mainloop
        mov $msg_frozen, %edi
        call puts
frozen:                         /* no memory writes in here */
        mov $(COM1 + 5), %dx
        in %dx, %al
        test $1, %al
        jz frozen
        mov $COM1, %dx
        in %dx, %al
        cmp $'U', %al
        jne frozen
        mov $msg_thawed, %edi
        call puts
        jmp mainloop

heartbeat:                      /* "HB %08x\r\n" of %ebp */
        mov $msg_hb, %edi
        call puts
        mov %ebp, %edi
        mov $8, %ecx
4:      rol $4, %edi
        mov %edi, %eax
        and $0xf, %al
        add $'0', %al
        cmp $'9', %al
        jbe 5f
        add $7, %al
5:      out %al, %dx
        loop 4b
        mov $msg_crlf, %edi
puts:                           /* NUL-terminated string at %edi */
        mov $COM1, %dx
6:      mov (%edi), %al
        test %al, %al
        jz 7f
        out %al, %dx
        inc %edi
        jmp 6b
7:      ret

irq0:
        push %eax
        mov $0x20, %al
        out %al, $0x20
        pop %eax
        iret

msg_boot:   .asciz "BOOT colo-probe guest\r\n"
msg_frozen: .asciz "FROZEN\r\n"
msg_thawed: .asciz "THAWED\r\n"
msg_hb:     .asciz "HB "
msg_crlf:   .asciz "\r\n"

        .p2align 3
gdt:    .quad 0
        .quad 0x00cf9a000000ffff        /* 0x08 code 4G */
        .quad 0x00cf92000000ffff        /* 0x10 data 4G */
gdtdesc: .word 23
        .long gdt
idtdesc: .word (0x21 * 8 - 1)
        .long IDT

