"""The Vivado Tcl script of a deployment: project, block design (processing system, AXI DMA, the accelerator as an
RTL module reference), bitstream, and the .bit/.hwh pair a PYNQ Overlay loads.

Kept to standard IP integrator commands (create_bd_cell, apply_bd_automation, connect_bd_*), written for Vivado
2020.2 to 2024.2. Vivado is not available where hbnn is developed: the script has not been run there (the README
of every deployment says so).
"""
from __future__ import annotations

from dataclasses import dataclass

from .spec import Board

__all__ = ["ProcessingSystem", "PROCESSING_SYSTEMS", "DMA_LENGTH_BITS", "processing_system", "vivado_script"]

DMA_LENGTH_BITS = 26  # AXI DMA's buffer length register: one transfer moves at most 2**26 - 1 bytes


@dataclass(frozen=True)
class ProcessingSystem:
    ip: str  # the IP's name; the script takes the newest version Vivado has
    automation: str  # the block automation rule that applies the board preset
    dma_bytes: int  # the HP port's data width, and so the DMA's stream width
    master: str  # PS port that reaches the DMA's registers
    memory_port: str  # high-performance port through which the DMA reaches DDR
    clock: str  # fabric clock 0
    reset: str  # its reset, active low
    settings: str  # CONFIG properties enabling those ports at that width; {mhz} is the fabric clock

    def configuration(self, mhz: float) -> str:
        return self.settings.format(mhz=f"{mhz:g}")


PROCESSING_SYSTEMS = {
    "xc7": ProcessingSystem(
        ip="processing_system7", automation="xilinx.com:bd_rule:processing_system7", dma_bytes=8,
        master="M_AXI_GP0", memory_port="S_AXI_HP0", clock="FCLK_CLK0", reset="FCLK_RESET0_N",
        settings="CONFIG.PCW_USE_M_AXI_GP0 {{1}} CONFIG.PCW_USE_S_AXI_HP0 {{1}} CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {{64}} "
                 "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{mhz}}}"),
    "xcup": ProcessingSystem(
        ip="zynq_ultra_ps_e", automation="xilinx.com:bd_rule:zynq_ultra_ps_e", dma_bytes=16,
        master="M_AXI_HPM0_FPD", memory_port="S_AXI_HP0_FPD", clock="pl_clk0", reset="pl_resetn0",
        settings="CONFIG.PSU__USE__M_AXI_GP0 {{1}} CONFIG.PSU__USE__M_AXI_GP1 {{0}} CONFIG.PSU__USE__M_AXI_GP2 {{0}} "
                 "CONFIG.PSU__USE__S_AXI_GP2 {{1}} CONFIG.PSU__SAXIGP2__DATA_WIDTH {{128}} "
                 "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz}}}"),
}


def processing_system(board: Board) -> ProcessingSystem:
    try:
        return PROCESSING_SYSTEMS[board.yosys_family]
    except KeyError:
        raise ValueError(f"board {board.name}: no processing system known for family {board.yosys_family!r}") from None


def vivado_script(board: Board, *, clock_mhz: float, verilog: list[str], top: str) -> str:
    """The Tcl, run from the deployment folder: `vivado -mode batch -source build_overlay.tcl`."""
    ps = processing_system(board)
    width = 8 * ps.dma_bytes
    sources = " ".join(f"[file join $here {name}]" for name in verilog)
    automation = ('make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"'
                  if board.yosys_family == "xc7" else 'apply_board_preset "1"')
    return f"""\
# hbnn: the accelerator as a PYNQ overlay for {board.name} ({board.part}), fabric clock {clock_mhz:g} MHz.
# Written by `hbnn package`, for Vivado 2020.2 to 2024.2; not run where it was generated (no Vivado there).
# Run from this folder:  vivado -mode batch -source build_overlay.tcl
# Writes hbnn.bit and hbnn.hwh here (what pynq.Overlay loads), the project under vivado/, and reports.
set here [file dirname [file normalize [info script]]]
set jobs 4
# The newest version of an AMD IP that this Vivado has.
proc ip {{name}} {{ return [lindex [lsort -dictionary [get_ipdefs -all "xilinx.com:ip:$name:*"]] end] }}
if {{[info exists ::env(HBNN_VIVADO_JOBS)]}} {{ set jobs $::env(HBNN_VIVADO_JOBS) }}

create_project hbnn_overlay [file join $here vivado] -part {board.part} -force
set board_part [lindex [lsort [get_board_parts -quiet -latest_file_version "*:{board.vivado_board}:*"]] end]
if {{$board_part eq ""}} {{
    puts "ERROR: Vivado has no board files for {board.vivado_board} ({board.name}); install them (Tools > Vivado Store > Boards, or the vendor's board files) and run again"
    exit 1
}}
set_property board_part $board_part [current_project]
add_files -norecurse [list {sources}]
update_compile_order -fileset sources_1

create_bd_design hbnn
create_bd_cell -type ip -vlnv [ip {ps.ip}] ps
apply_bd_automation -rule {ps.automation} -config {{{automation}}} [get_bd_cells ps]
set_property -dict [list {ps.configuration(clock_mhz)}] [get_bd_cells ps]

# AXI DMA in simple mode: one transfer per direction and batch, {width}-bit streams and memory ports.
create_bd_cell -type ip -vlnv [ip axi_dma] dma
set_property -dict [list CONFIG.c_include_sg {{0}} CONFIG.c_sg_length_width {{{DMA_LENGTH_BITS}}} \\
    CONFIG.c_sg_include_stscntrl_strm {{0}} CONFIG.c_m_axi_mm2s_data_width {{{width}}} \\
    CONFIG.c_m_axis_mm2s_tdata_width {{{width}}} CONFIG.c_m_axi_s2mm_data_width {{{width}}} \\
    CONFIG.c_s_axis_s2mm_tdata_width {{{width}}} CONFIG.c_mm2s_burst_size {{64}} CONFIG.c_s2mm_burst_size {{64}}] \\
    [get_bd_cells dma]

# The accelerator: {top} (AXI4-Stream s_axis / m_axis on ap_clk, ap_rst_n).
create_bd_cell -type module -reference {top} accelerator
connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins accelerator/s_axis]
connect_bd_intf_net [get_bd_intf_pins accelerator/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]

apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Master {{/ps/{ps.master}}} Slave {{/dma/S_AXI_LITE}} Clk_master {{Auto}} Clk_slave {{Auto}} Clk_xbar {{Auto}} intc_ip {{New AXI Interconnect}}}} [get_bd_intf_pins dma/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Master {{/dma/M_AXI_MM2S}} Slave {{/ps/{ps.memory_port}}} Clk_master {{Auto}} Clk_slave {{Auto}} Clk_xbar {{Auto}} intc_ip {{New AXI SmartConnect}}}} [get_bd_intf_pins ps/{ps.memory_port}]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {{Master {{/dma/M_AXI_S2MM}} Slave {{/ps/{ps.memory_port}}} Clk_master {{Auto}} Clk_slave {{Auto}} Clk_xbar {{Auto}} intc_ip {{Auto}}}} [get_bd_intf_pins dma/M_AXI_S2MM]

# The accelerator's clock and a reset synchronous to it.
create_bd_cell -type ip -vlnv [ip proc_sys_reset] accelerator_reset
connect_bd_net [get_bd_pins ps/{ps.clock}] [get_bd_pins accelerator/ap_clk] [get_bd_pins accelerator_reset/slowest_sync_clk]
connect_bd_net [get_bd_pins ps/{ps.reset}] [get_bd_pins accelerator_reset/ext_reset_in]
connect_bd_net [get_bd_pins accelerator_reset/peripheral_aresetn] [get_bd_pins accelerator/ap_rst_n]

assign_bd_address
validate_bd_design
save_bd_design
make_wrapper -files [get_files hbnn.bd] -top -import
set_property top hbnn_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {{[get_property PROGRESS [get_runs impl_1]] ne "100%"}} {{
    puts "ERROR: implementation did not finish; see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
    exit 1
}}
file copy -force [file join [get_property DIRECTORY [get_runs impl_1]] hbnn_wrapper.bit] [file join $here hbnn.bit]
file copy -force [lindex [get_files -all -of_objects [get_files hbnn.bd] *hbnn.hwh] 0] [file join $here hbnn.hwh]
open_run impl_1
report_utilization -hierarchical -file [file join $here vivado_utilization.rpt]
report_timing_summary -file [file join $here vivado_timing.rpt]
puts "hbnn: wrote [file join $here hbnn.bit] and [file join $here hbnn.hwh]"
"""
