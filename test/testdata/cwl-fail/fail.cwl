#!/usr/bin/env cwl-runner
cwlVersion: v1.0
class: CommandLineTool
baseCommand: [sh, -c, 'echo about to fail; exit 1']
inputs: []
outputs: []
