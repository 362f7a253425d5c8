# Vitis HLS flow for the tpq_layer kernel: C simulation, C synthesis, IP export.
#
#   vitis_hls -f scripts/hls.tcl -tclargs <gen_dir> <build_dir> <steps>
#
# gen_dir holds what `python -m ternpynq.overlay.generate BOARD DIR` wrote (tpq_config.h,
# tpq_regs.h, board.tcl) and vectors.bin from ternpynq.overlay.csim_vectors; steps is a
# comma-separated subset of csim,csynth,export. The IP lands in the standard place,
# <build_dir>/hls_prj/sol/impl/ip, with the fixed VLNV of regmap.json
# (ternpynq.org:hls:tpq_layer:1.0), which the Vivado script instantiates.

if {[llength $argv] != 3} {
    puts stderr "usage: vitis_hls -f hls.tcl -tclargs GEN_DIR BUILD_DIR csim,csynth,export"
    exit 2
}
lassign $argv gen_dir build_dir steps
set gen_dir [file normalize $gen_dir]
set build_dir [file normalize $build_dir]
set src_dir [file normalize [file join [file dirname [info script]] .. hls tpq_layer]]
source [file join $gen_dir board.tcl]

# The VLNV is fixed by the register map; split it once so export_design and Vivado agree.
lassign [split $tpq_vlnv :] ip_vendor ip_library ip_name ip_version

set cflags "-std=c++14 -I$gen_dir -I$src_dir"
open_project -reset [file join $build_dir hls_prj]
set_top tpq_layer
foreach src {tpq_layer_top.cpp tpq_conv.cpp tpq_pool.cpp tpq_dw.cpp} {
    add_files [file join $src_dir $src] -cflags $cflags
}
# The testbench decodes registers with the csim ABI's helper, so both are testbench files.
add_files -tb [file join $src_dir tpq_layer_tb.cpp] -cflags $cflags
add_files -tb [file join $src_dir tpq_csim.cpp] -cflags $cflags

open_solution -reset sol -flow_target vivado
set_part $tpq_part
create_clock -period [format %.3f [expr {1000.0 / $tpq_clock_mhz}]] -name default
# Byte pointers widen to the board's HP port width for bursts (UG1399, "Automatic Port Widening").
config_interface -m_axi_max_widen_bitwidth $tpq_axi_bits -m_axi_alignment_byte_size [expr {$tpq_axi_bits / 8}]
config_interface -m_axi_addr64
config_compile -pipeline_loops 64

set steps [split $steps ,]
if {"csim" in $steps} {
    # tpq_tb returns nonzero on any mismatch, which makes csim_design fail the flow.
    csim_design -argv [file join $gen_dir vectors.bin]
}
if {"csynth" in $steps || "export" in $steps} {
    csynth_design
}
if {"export" in $steps} {
    export_design -format ip_catalog -rtl verilog \
        -vendor $ip_vendor -library $ip_library -ipname $ip_name -version $ip_version \
        -display_name "ternpynq ternary PE array ($tpq_board, P=$tpq_P, g=$tpq_g)"
}
exit 0
