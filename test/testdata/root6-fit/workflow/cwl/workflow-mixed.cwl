#!/usr/bin/env cwl-runner
# root6-fit without ROOT: generate toy events, then fit them and draw the
# plot (REANA's root6-roofit workflow.cwl with the ROOT macros replaced by
# code/gendata.sh and code/fitdata.sh), with fitdata on Slurm.
cwlVersion: v1.0
class: Workflow

inputs:
  gendata_tool: File
  fitdata_tool: File
  events: int

outputs:
  plot:
    type: File
    outputSource: fitdata/plot
  # Not in REANA's demo: an output only gendata makes, for TARGET=data.
  data:
    type: File
    outputSource: gendata/data

steps:
  gendata:
    hints:
      reana:
        kubernetes_memory_limit: '256Mi'
    run: gendata.cwl
    in:
      gendata_tool: gendata_tool
      events: events
    out: [data]

  fitdata:
    hints:
      reana:
        kubernetes_memory_limit: '256Mi'
        compute_backend: slurmcern
    run: fitdata.cwl
    in:
      fitdata_tool: fitdata_tool
      data: gendata/data
    out: [plot]
