# Vivado flow: block design with the Zynq PS and the tpq_layer IP, bitstream, hand-off files.
#
#   vivado -mode batch -source scripts/vivado.tcl -tclargs <gen_dir> <build_dir> <ip_repo> <out_dir> <revision>
#
# Builds the block design for the board in <gen_dir>/board.tcl (part, PS kind, PL clock, HP
# ports): the PS's general-purpose master drives the kernel's AXI-Lite control port, the
# kernel's four m_axi ports reach DDR through HP0..HP3, and its interrupt goes through an AXI
# interrupt controller (the way PYNQ expects interrupts). Writes into <out_dir>:
#   ternpynq.bit, ternpynq.hwh and ternpynq.json (manifest: board, geometry, register-map hash,
#   source revision) -- the names ternpynq.overlay.paths.BITSTREAM_FILES lists.

if {[llength $argv] != 5} {
    puts stderr "usage: vivado -mode batch -source vivado.tcl -tclargs GEN_DIR BUILD_DIR IP_REPO OUT_DIR REVISION"
    exit 2
}
lassign $argv gen_dir build_dir ip_repo out_dir revision
foreach var {gen_dir build_dir ip_repo out_dir} { set $var [file normalize [set $var]] }
source [file join $gen_dir board.tcl]
lassign [split $tpq_vlnv :] ip_vendor ip_library ip_name ip_version

proc latest_ip {name} {
    # The newest installed version of a Xilinx IP, so the script is not tied to one release.
    set defs [lsort -decreasing [get_ipdefs -all -filter "NAME == $name"]]
    if {[llength $defs] == 0} { error "IP $name is not in this Vivado's catalog" }
    return [lindex $defs 0]
}

create_project -force tpq [file join $build_dir vivado] -part $tpq_part
if {$tpq_board_part ne "" && [llength [get_board_parts -quiet $tpq_board_part]] > 0} {
    set_property board_part $tpq_board_part [current_project]
    set preset 1
} else {
    puts "WARNING: board files for '$tpq_board_part' not installed; the PS uses part defaults"
    set preset 0
}
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog

create_bd_design tpq
set ps [create_bd_cell -type ip -vlnv [latest_ip $tpq_ps] ps]
if {$tpq_ps eq "zynq7"} {
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config [list make_external {FIXED_IO, DDR} apply_board_preset $preset] $ps
    set cfg [list CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $tpq_clock_mhz CONFIG.PCW_USE_M_AXI_GP0 1 \
                 CONFIG.PCW_USE_FABRIC_INTERRUPT 1 CONFIG.PCW_IRQ_F2P_INTR 1]
    set hp_ports {}
    foreach i {0 1 2 3} {
        lappend cfg CONFIG.PCW_USE_S_AXI_HP$i 1 CONFIG.PCW_S_AXI_HP${i}_DATA_WIDTH $tpq_axi_bits
        lappend hp_ports ps/S_AXI_HP$i
    }
    set_property -dict $cfg $ps
    set ps_master ps/M_AXI_GP0
    set ps_irq ps/IRQ_F2P
} else {
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config [list apply_board_preset $preset] $ps
    # HP0..HP3 of the FPD are S_AXI_GP2..GP5 in the PS configuration.
    set cfg [list CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $tpq_clock_mhz CONFIG.PSU__USE__M_AXI_GP0 1 \
                 CONFIG.PSU__USE__M_AXI_GP1 0 CONFIG.PSU__USE__IRQ0 1]
    set hp_ports {}
    foreach i {0 1 2 3} {
        set gp [expr {$i + 2}]
        lappend cfg CONFIG.PSU__USE__S_AXI_GP$gp 1 CONFIG.PSU__SAXIGP${gp}__DATA_WIDTH $tpq_axi_bits
        lappend hp_ports ps/S_AXI_HP${i}_FPD
    }
    set_property -dict $cfg $ps
    set ps_master ps/M_AXI_HPM0_FPD
    set ps_irq ps/pl_ps_irq0
}

set tpq [create_bd_cell -type ip -vlnv $tpq_vlnv tpq_layer_0]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master Auto Clk_slave Auto Clk_xbar Auto Master /$ps_master Slave /tpq_layer_0/s_axi_control \
                 intc_ip {New AXI Interconnect} master_apb 0] [get_bd_intf_pins tpq_layer_0/s_axi_control]
# One HP port per m_axi bundle, so weight, input, output and residual traffic never share a port.
foreach bundle {gmem_w gmem_i gmem_o gmem_r} hp $hp_ports {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
        -config [list Clk_master Auto Clk_slave Auto Clk_xbar Auto Master /tpq_layer_0/m_axi_$bundle Slave /$hp \
                     intc_ip {New AXI SmartConnect} master_apb 0] [get_bd_intf_pins $hp]
}
set intc [create_bd_cell -type ip -vlnv [latest_ip axi_intc] axi_intc_0]
set_property -dict [list CONFIG.C_IRQ_CONNECTION 1] $intc
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
    -config [list Clk_master Auto Clk_slave Auto Clk_xbar Auto Master /$ps_master Slave /axi_intc_0/s_axi \
                 intc_ip Auto master_apb 0] [get_bd_intf_pins axi_intc_0/s_axi]
connect_bd_net [get_bd_pins tpq_layer_0/interrupt] [get_bd_pins axi_intc_0/intr]
connect_bd_net [get_bd_pins axi_intc_0/irq] [get_bd_pins $ps_irq]

assign_bd_address
validate_bd_design
save_bd_design

make_wrapper -files [get_files tpq.bd] -top -import
set_property top tpq_wrapper [current_fileset]
launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation failed; see [file join $build_dir vivado tpq.runs impl_1 runme.log]"
}

file mkdir $out_dir
set bit_src [lindex [glob [file join $build_dir vivado tpq.runs impl_1 *.bit]] 0]
# Vivado >= 2020.2 writes the hand-off under .gen, older releases under .srcs.
set hwh_src [lindex [glob [file join $build_dir vivado tpq.gen sources_1 bd tpq hw_handoff tpq.hwh] \
                          [file join $build_dir vivado tpq.srcs sources_1 bd tpq hw_handoff tpq.hwh]] 0]
file copy -force $bit_src [file join $out_dir ternpynq.bit]
file copy -force $hwh_src [file join $out_dir ternpynq.hwh]

# The manifest the pynq backend checks before it drives the overlay (board, geometry, regmap).
set json "\{\n"
foreach {key value quoted} [list \
        board $tpq_board 1 part $tpq_part 1 clock_mhz $tpq_clock_mhz 0 P $tpq_P 0 g $tpq_g 0 \
        axi_bits $tpq_axi_bits 0 vlnv $tpq_vlnv 1 regmap_sha256 $tpq_regmap_sha256 1 \
        source_revision $revision 1 vivado_version [version -short] 1 \
        built_utc [clock format [clock seconds] -gmt 1 -format %Y-%m-%dT%H:%M:%SZ] 1] {
    append json [expr {$quoted ? "  \"$key\": \"$value\",\n" : "  \"$key\": $value,\n"}]
}
set json "[string trimright $json ",\n"]\n\}\n"
set fh [open [file join $out_dir ternpynq.json] w]
puts -nonewline $fh $json
close $fh
puts "wrote [file join $out_dir ternpynq.bit], ternpynq.hwh and ternpynq.json"
exit 0
